"""``forwardAuth`` (Traefik's ``pkg/middlewares/auth/forward.go``): every request is
first asked of the authentication server at ``address``.

What the auth server receives: a ``GET`` (the request's method with
``preserveRequestMethod``) of ``address``, with the request's headers as Traefik's
middlewares see them (after the entry point: ``X-Real-Ip``, ``X-Forwarded-Proto``,
``-Port``, ``-Host``, ``-Server`` set, untrusted ``X-Forwarded-*`` gone), less the
hop-by-hop ones, only those named in ``authRequestHeaders`` when it is set, and then:

* ``trustForwardHeader`` left out (Traefik's legacy behaviour): ``X-Forwarded-For`` (the
  client's address), ``-Proto``, ``-Method``, ``-Host`` and ``-Uri`` (the request target)
  set over whatever was there; the other ``X-Forwarded-*`` pass as they are;
* ``false``: every ``X-Forwarded-*`` and ``X-Real-Ip`` removed, then ``-For``,
  ``-Method``, ``-Proto``, ``-Port`` (the Host's port, else 443 for https, else 80),
  ``-Host`` and ``-Uri`` set;
* ``true``: those kept (and kept by ``authRequestHeaders``), the client's address
  appended to ``X-Forwarded-For``, the missing ones set;

plus what Go's client adds: ``Host`` (the address's), ``User-Agent:
Go-http-client/1.1`` when the request had none (with ``trustForwardHeader`` set, none
at all), ``Accept-Encoding: gzip`` when it had none (a gzip answer is then
decompressed, as Go does). With ``forwardBody`` the request's body goes too (read
whole, at most ``maxBodySize`` bytes, else ``401``), and then on to the service.

What comes back: a ``2xx`` answer lets the request through, with the headers named in
``authResponseHeaders`` (and those ``authResponseHeadersRegex`` matches, by Go's
canonical name) replaced by the auth server's; when the auth server set cookies, the
service's answer carries its own cookies except those named in
``addAuthCookiesToResponse``, which come from the auth server (every cookie as Go
re-serialises it). Any other answer is the client's: its status, headers (hop-by-hop
ones dropped; a relative ``Location`` made absolute against ``address`` unless
``preserveLocationHeader``) and body; a ``401`` is a ``302`` to ``authSigninURL`` when
set. An auth server that cannot be reached, or takes more than 30 s, is a ``500`` with
no body; an answer body over ``maxResponseBodySize`` a ``401``.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import ssl
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from urllib.parse import urljoin, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import ForwardAuth as ForwardAuthConfig
from ..entrypoint.context import forward_of, replace_forward
from ..entrypoint.forwarding import MANAGED_X_HEADERS, Forward
from ..rules._re2 import compile_re2
from ..transport.pool import GatewayTransport
from ..transport.request import UpstreamRequest
from ..transport.tls import client_tls_context
from ._gocookie import parse_set_cookie
from .redirect import go_url_string

__all__ = ["AUTH_TIMEOUT", "ForwardAuth", "canonical_header_key"]

AUTH_TIMEOUT = 30.0
"""The auth request's whole time, Traefik's ``http.Client{Timeout: 30 * time.Second}``."""

HeaderList = list[tuple[bytes, bytes]]

# forward.go's hopHeaders: removed from the auth request and from a relayed answer
# (Proxy-Authorization is sent to the auth server, RFC 7235 §4.4).
_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailers", b"transfer-encoding", b"upgrade"}
)
_X_HEADERS = tuple(sorted(MANAGED_X_HEADERS - {b"x-forwarded-scheme", b"x-scheme"}))
# forwardedheaders.XHeadersSet
_PROXY = (b"proxy-authorization", b"proxy-authenticate", b"proxy-connection")
_GO_USER_AGENT = b"Go-http-client/1.1"


def canonical_header_key(name: bytes) -> bytes:
    """Go's ``http.CanonicalHeaderKey``: ``x-auth-user`` -> ``X-Auth-User``; a name with
    a byte outside the token grammar is returned as it is."""
    if any(c in b" \t\r\n:" or c >= 0x7F for c in name):
        return name
    return b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))


def _managed(name: bytes) -> bool:
    """Go's ``isManagedXHeader``: a Traefik X- header, ``_`` read as ``-``."""
    return name.replace(b"_", b"-") in _X_HEADERS


def _set(headers: HeaderList, name: bytes, value: bytes) -> None:
    """Go's ``Header.Set``: ``name``'s values replaced by ``value``."""
    headers[:] = [(k, v) for k, v in headers if k != name]
    headers.append((name, value))


def _has(headers: HeaderList, name: bytes) -> bool:
    return any(k == name for k, _ in headers)


class _TooLarge(Exception):
    pass


class ForwardAuth:
    def __init__(self, app: ASGIApp, config: ForwardAuthConfig) -> None:
        self.app = app
        self.config = config
        url = urlsplit(config.address)
        scheme = url.scheme.lower().encode()
        self.address = config.address
        self.origin = (
            scheme,
            (url.hostname or "").encode(),
            url.port or (443 if scheme == b"https" else 80),
        )
        self.authority = url.netloc.rpartition("@")[2].encode()
        target = url.path or "/"
        if url.query or config.address.endswith("?"):
            target += "?" + url.query
        self.target = target.encode()
        self.trust = config.trust_forward_header
        allowed = [h.lower().encode() for h in config.auth_request_headers]
        if self.trust and allowed:
            allowed += _X_HEADERS
        self.allowed = allowed
        self.response_headers = [h.lower().encode() for h in config.auth_response_headers]
        regex = config.auth_response_headers_regex
        self.regex = compile_re2(regex) if regex else None
        self.cookie_names = {name.encode() for name in config.add_auth_cookies_to_response}
        tls = config.tls
        context = None
        if scheme == b"https" and tls is not None:
            try:
                context = client_tls_context(tls)
            except ssl.SSLError:  # a certificate and key that do not pair
                scheme = b""
        # Traefik's client rides on Go's http.DefaultTransport, shared by the process,
        # or, with tls, on a clone of it of the middleware's own.
        self.transport = _default_transport() if context is None else _go_transport(context)
        # Go's client refuses any other scheme: every request is then answered 500.
        self.reachable = scheme in (b"http", b"https")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        body: bytes | None = None
        config = self.config
        # A CONNECT's body of unknown length is the tunnel's data: never sent.
        tunnel = forward.method == "CONNECT" and forward.chunked
        if config.forward_body and scope["type"] == "http" and not tunnel:
            try:
                body = await _read_body(receive, config.max_body_size)
            except _TooLarge:
                await _answer(send, 401)
                return
            receive = _replay(body, receive)
        headers = self.auth_request_headers(scope, forward)
        try:
            status, answer_headers, answer_body = await asyncio.wait_for(
                self.ask(forward, headers, body), AUTH_TIMEOUT
            )
        except _TooLarge:
            await _answer(send, 401)
            return
        except Exception:  # unreachable, refused, timed out, a bad answer: Go's client error
            await _answer(send, 500)
            return
        if config.auth_signin_url and status == 401:
            await _redirect(send, config.auth_signin_url)
            return
        if not 200 <= status < 300:
            await self.relay(send, status, answer_headers, answer_body)
            return
        scope = replace_forward(scope, headers=self.granted(forward.headers, answer_headers))
        cookies = [v for k, v in answer_headers if k.lower() == b"set-cookie"]
        parsed = [c for c in (parse_set_cookie(v) for v in cookies) if c is not None]
        if parsed:
            send = self.cookie_modifier(
                send, [c.string() for c in parsed if c.name in self.cookie_names]
            )
        await self.app(scope, receive, send)

    def auth_request_headers(self, scope: Scope, forward: Forward) -> HeaderList:
        """The auth request's headers (the module docstring), ``Host`` left to the
        transport."""
        client = scope.get("client")
        client_ip = client[0].partition("%")[0].encode() if client else b""
        seen = _middleware_view(forward, client_ip)
        connection = {
            t.strip().lower()
            for k, v in scope["headers"]
            if k.lower() == b"connection"
            for t in v.split(b",")
        }
        seen += [
            (k.lower(), v)
            for k, v in scope["headers"]
            if k.lower() in _PROXY and k.lower() not in connection
        ]
        had_agent = _has(seen, b"user-agent")
        headers = [(k, v) for k, v in seen if k not in _HOP]
        tls = scope.get("scheme") in ("https", "wss")
        host = forward.host or b""
        if self.trust is None:
            headers = self.filtered(headers)
            if client_ip:
                _set(headers, b"x-forwarded-for", client_ip)
            _set(headers, b"x-forwarded-proto", b"https" if tls else b"http")
            _set(headers, b"x-forwarded-method", forward.method.encode())
            _set(headers, b"x-forwarded-host", host)
            _set(headers, b"x-forwarded-uri", forward.target)
        else:
            if not self.trust:
                headers = [(k, v) for k, v in headers if not _managed(k)]
            if not had_agent:
                headers.append((b"user-agent", b""))
            headers = self.filtered(headers)
            if client_ip:
                prior = [v for k, v in headers if k == b"x-forwarded-for"]
                _set(headers, b"x-forwarded-for", b", ".join([*prior, client_ip]))
            proto = b"https" if tls else b"http"
            for name, value in (
                (b"x-forwarded-method", forward.method.encode()),
                (b"x-forwarded-proto", proto),
                (b"x-forwarded-port", b""),
                (b"x-forwarded-host", host),
                (b"x-forwarded-uri", forward.target),
            ):
                if not _has(headers, name):
                    if name == b"x-forwarded-port":
                        value = _forwarded_port(host, headers, tls)
                    headers.append((name, value))
        agents = [v for k, v in headers if k == b"user-agent"]
        if not agents:
            headers.append((b"user-agent", _GO_USER_AGENT))
        elif not agents[0]:  # Go's transport writes no User-Agent for an empty one
            headers = [(k, v) for k, v in headers if k != b"user-agent"]
        return headers

    def filtered(self, headers: HeaderList) -> HeaderList:
        """``filterForwardRequestHeaders``: only the allowed names, in their order."""
        if not self.allowed:
            return headers
        out: HeaderList = []
        for name in dict.fromkeys(self.allowed):
            out += [(k, v) for k, v in headers if k == name]
        return out

    async def ask(
        self, forward: Forward, headers: HeaderList, body: bytes | None
    ) -> tuple[int, HeaderList, bytes]:
        """One exchange with the auth server, as Go's client makes it."""
        if not self.reachable:
            raise ValueError(f"unsupported protocol scheme in {self.address!r}")
        method = forward.method if self.config.preserve_request_method else "GET"
        gzip_added = False
        if method != "HEAD" and not any(
            k in (b"accept-encoding", b"range") and v for k, v in headers
        ):
            headers = [*headers, (b"accept-encoding", b"gzip")]
            gzip_added = True
        headers = [(k, v) for k, v in headers if k not in (b"content-length", b"host")]
        if body is not None and forward.chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        elif body:
            headers.append((b"content-length", str(len(body)).encode()))
        elif method in ("POST", "PUT", "PATCH"):  # Go's transport announces an empty body
            headers.append((b"content-length", b"0"))
        request = UpstreamRequest(
            method.encode(),
            self.origin,
            self.authority,
            self.target,
            [(b"host", self.authority), *headers],
            _chunks(body or b""),
            {"connect": None, "read": None, "write": None, "pool": None},
            has_body=bool(body),
        )
        raw = await self.transport.forward(request)
        try:
            data = await _read_limited(raw.stream, self.config.max_response_body_size)
        finally:
            await raw.stream.aclose()
        answer = list(raw.headers)
        if gzip_added and any(
            k.lower() == b"content-encoding" and v.lower() == b"gzip" for k, v in answer
        ):
            data = _gunzip(data)
            answer = [
                (k, v)
                for k, v in answer
                if k.lower() not in (b"content-encoding", b"content-length")
            ]
        return raw.status, answer, data

    def granted(self, headers: Sequence[tuple[bytes, bytes]], answer: HeaderList) -> HeaderList:
        """The request's headers once the auth server said yes."""
        out = list(headers)
        for name in self.response_headers:
            out = [(k, v) for k, v in out if k != name]
            out += [(name, v) for k, v in answer if k.lower() == name]
        if self.regex is not None:
            regex = self.regex
            out = [
                (k, v)
                for k, v in out
                if not regex.search(canonical_header_key(k).decode("latin-1"))
            ]
            out += [
                (k.lower(), v)
                for k, v in answer
                if regex.search(canonical_header_key(k).decode("latin-1"))
            ]
        return out

    async def relay(self, send: Send, status: int, answer: HeaderList, body: bytes) -> None:
        """A non-2xx answer, as Traefik copies it to the client."""
        headers = [
            (k.lower(), v)
            for k, v in answer
            if k.lower() not in _HOP and k.lower() not in (b"content-length", b"date")
        ]
        location = next((v for k, v in headers if k == b"location"), b"")
        if location:
            if not self.config.preserve_location_header:
                location = urljoin(self.address, location.decode("latin-1")).encode("latin-1")
            rewritten = go_url_string(location)
            if rewritten is None:
                await _answer(send, 500)
                return
            _set(headers, b"location", rewritten)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def cookie_modifier(self, send: Send, auth_cookies: list[bytes]) -> Send:
        """Traefik's ``buildModifier``: the service's cookies re-serialised, those named
        in ``addAuthCookiesToResponse`` replaced by the auth server's."""
        names = self.cookie_names

        async def modified(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                own = [parse_set_cookie(v) for k, v in headers if k.lower() == b"set-cookie"]
                kept = [c.string() for c in own if c is not None and c.name not in names]
                headers = [(k, v) for k, v in headers if k.lower() != b"set-cookie"]
                headers += [(b"set-cookie", c) for c in (*kept, *auth_cookies)]
                message = {**message, "headers": headers}
            await send(message)

        return modified


def _go_transport(context: ssl.SSLContext | None = None) -> GatewayTransport:
    """Go's ``http.DefaultTransport`` settings: idle connections kept 90 s, at most
    ``DefaultMaxIdleConnsPerHost`` (2) per host."""
    return GatewayTransport(keepalive_expiry=90.0, max_idle_per_host=2, ssl_context=context)


@functools.cache
def _default_transport() -> GatewayTransport:
    """The one transport of every ``forwardAuth`` without ``tls`` (it binds to each
    event loop it is used from)."""
    return _go_transport()


def _middleware_view(forward: Forward, client_ip: bytes) -> HeaderList:
    """The request's headers as Traefik's middlewares see them: ``forward`` holds them
    as the backend will receive them, with the client's address already appended to
    ``X-Forwarded-For`` and ``Accept-Encoding: gzip`` perhaps added (both the reverse
    proxy's doing, after the middlewares)."""
    seen = list(forward.headers)
    if forward.gzip_added and (b"accept-encoding", b"gzip") in seen:
        seen.remove((b"accept-encoding", b"gzip"))
    out: HeaderList = []
    for name, value in seen:
        if name == b"x-forwarded-for" and client_ip:
            if value == client_ip:
                continue
            value = value.removesuffix(b", " + client_ip)
        out.append((name, value))
    return out


def _forwarded_port(host: bytes, headers: HeaderList, tls: bool) -> bytes:
    """forward.go's ``forwardedPort``."""
    if host.count(b":") == 1 or host.startswith(b"["):
        port = host.rpartition(b":")[2]
        if port and b"]" not in port:
            return port
    proto = next((v for k, v in headers if k == b"x-forwarded-proto"), b"")
    return b"443" if proto in (b"https", b"wss") or tls else b"80"


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, at most ``limit`` bytes (-1: no limit)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit >= 0 and size > limit:
            raise _TooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` once, then waits on the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _read_limited(stream: AsyncIterable[bytes], limit: int) -> bytes:
    """The auth server's answer body, at most ``limit`` bytes (-1: no limit)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if limit >= 0 and size > limit:
            raise _TooLarge
        parts.append(chunk)
    return b"".join(parts)


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError("bad gzip answer from the auth server") from exc


async def _answer(send: Send, status: int) -> None:
    """Go's ``rw.WriteHeader(status)`` and nothing else: an empty body."""
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


async def _redirect(send: Send, url: str) -> None:
    """Go's ``http.Redirect(rw, req, url, 302)`` to ``authSigninURL`` as Traefik 3.7.15
    sends it: ``Location`` alone, no body, whatever the method (its writer already
    holds a ``Content-Type`` entry, so Go adds no HTML body)."""
    headers = [(b"location", url.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
