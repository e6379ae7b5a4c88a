"""``redirectRegex`` and ``redirectScheme`` (Traefik's ``pkg/middlewares/redirect``).

Both read the request's URL as ``scheme://host[:port]/path?query`` (``https`` on a TLS
connection; ``redirectScheme`` also believes ``X-Forwarded-Proto``, as the entry point
left it, and leaves out the scheme's default port), rewrite it with a Go regexp
(``ReplaceAllString``) and, when the result differs, answer it themselves: ``Location``
(the new URL as Go's ``url.Parse`` then ``URL.String`` give it back), status ``302``
for ``GET`` and ``307`` for any other method (``HEAD`` included), ``301``/``308`` when
``permanent``, and the status text as the body (``Found``, no newline, no
``Content-Type``: Traefik's response writer does not sniff it). A result Go's
``url.Parse`` refuses is answered ``502 Bad Gateway`` (oxy's error handler takes Go's
``*url.Error``, a ``net.Error``, for a failed upstream).
A URL the rewrite leaves as it was goes on to the next handler.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import RedirectRegex as RedirectRegexConfig
from ..config.middlewares import RedirectScheme as RedirectSchemeConfig
from ..entrypoint.context import forward_of
from ..entrypoint.forwarding import Forward
from ..rules._re2 import GoRegexp, compile_re2
from ._url import RequestURL, path_unescape

__all__ = ["RedirectRegex", "RedirectScheme", "go_url_string"]

#: Traefik's ``uriPattern`` of ``redirectScheme``.
_SCHEME_URI = r"^(https?:\/\/)?(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?(.*)$"
_SCHEME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def go_url_string(raw: bytes) -> bytes | None:
    """``url.Parse(raw).String()`` in Go, for the URLs a redirect builds; None where
    ``url.Parse`` returns an error (a control byte, a bad ``%`` escape, a missing
    scheme before ``:``, a colon in a relative first segment)."""
    if any(c < 0x20 or c == 0x7F for c in raw):
        return None
    rest, hash_, fragment = raw.partition(b"#")
    if hash_ and path_unescape(fragment) is None:
        return None
    scheme = b""
    for i, c in enumerate(rest):
        if c == ord(":"):
            if i == 0:
                return None  # missing protocol scheme
            scheme, rest = rest[:i].lower(), rest[i + 1 :]
            break
        if c not in _SCHEME_CHARS or (i == 0 and not chr(c).isalpha()):
            break
    query: bytes | None = None
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        rest, query = rest[:-1], b""
    elif b"?" in rest:
        rest, _, query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:
            out = scheme + b":" + rest  # opaque
            out += b"" if query is None else b"?" + query
            return out + (b"#" + fragment if hash_ else b"")
        if b":" in rest.partition(b"/")[0]:
            return None
    authority: bytes | None = None
    if rest.startswith(b"//") and (scheme or not rest.startswith(b"///")):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        host = authority.rpartition(b"@")[2]
        if b"%" in host and path_unescape(host) is None:
            return None
    url = RequestURL.from_escaped(rest, query)
    if path_unescape(rest) is None:
        return None
    out = scheme + b":" if scheme else b""
    escaped = url.escaped_path()
    if authority is not None and (authority or escaped):
        out += b"//" + authority
    if escaped and escaped[:1] != b"/" and authority:
        out += b"/"
    out += escaped
    if query is not None:
        out += b"?" + query
    return out + (b"#" + fragment if hash_ else b"")


def _status(method: str, permanent: bool) -> int:
    if permanent:
        return 301 if method == "GET" else 308
    return 302 if method == "GET" else 307


async def _moved(send: Send, location: bytes, status: int) -> None:
    body = HTTPStatus(status).phrase.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"location", location),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _bad_gateway(send: Send) -> None:
    body = b"Bad Gateway"
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Redirect:
    """Traefik's ``redirect``: the URL rewritten by ``regexp``; moved when it changed."""

    def __init__(self, app: ASGIApp, regexp: GoRegexp, replacement: str, permanent: bool) -> None:
        self.app = app
        self.regexp = regexp
        self.replacement = replacement
        self.permanent = permanent

    def raw_url(self, scope: Scope, forward: Forward) -> bytes:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        old = self.raw_url(scope, forward)
        if self.regexp.submatch(old) is None:
            await self.app(scope, receive, send)
            return
        new = self.regexp.replace_all(old, self.replacement)
        location = go_url_string(new)
        if location is None:
            await _bad_gateway(send)
            return
        if new != old:
            await _moved(send, location, _status(forward.method, self.permanent))
            return
        await self.app(scope, receive, send)


def _is_tls(scope: Scope) -> bool:
    return scope.get("scheme") in ("https", "wss")


class RedirectRegex(_Redirect):
    def __init__(self, app: ASGIApp, config: RedirectRegexConfig) -> None:
        super().__init__(app, compile_re2(config.regex), config.replacement, config.permanent)

    def raw_url(self, scope: Scope, forward: Forward) -> bytes:
        scheme = b"https" if _is_tls(scope) else b"http"
        return scheme + b"://" + (forward.host or b"") + forward.target


def _split_host_port(host: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``net.SplitHostPort``; None where it returns an error."""
    if host.startswith(b"["):
        end = host.find(b"]")
        if end < 0 or host[end + 1 : end + 2] != b":":
            return None
        name, port = host[1:end], host[end + 2 :]
        if b"[" in name or b"]" in port:
            return None
        return name, port
    name, colon, port = host.rpartition(b":")
    if not colon or b":" in name or b"[" in host or b"]" in host:
        return None
    return name, port


class RedirectScheme(_Redirect):
    def __init__(self, app: ASGIApp, config: RedirectSchemeConfig) -> None:
        port = ""
        default = (config.scheme, config.port) in (("http", "80"), ("https", "443"))
        if config.port and not default:
            port = ":" + config.port
        replacement = config.scheme + "://${2}" + port + "${4}"
        super().__init__(app, compile_re2(_SCHEME_URI), replacement, config.permanent)

    def raw_url(self, scope: Scope, forward: Forward) -> bytes:
        host = forward.host or b""
        port = b""
        split = _split_host_port(host)
        if split is not None:
            host, port = split[0], b":" + split[1]
        scheme = b"https" if _is_tls(scope) else b"http"
        proto = next((v for k, v in forward.headers if k == b"x-forwarded-proto"), b"")
        if proto.lower() in (b"http", b"ws"):
            scheme = b"http"
        elif proto.lower() in (b"https", b"wss"):
            scheme = b"https"
        if (scheme, port) in ((b"http", b":80"), (b"https", b":443")):
            port = b""
        return scheme + b"://" + host + port + forward.target
