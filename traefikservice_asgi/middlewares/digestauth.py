"""``digestAuth`` (Traefik's ``pkg/middlewares/auth/digest_auth.go``, on go-http-auth's
``DigestAuth``, RFC 2617 with MD5 and ``qop=auth`` only).

Each instance has its ``opaque`` (12 random bytes, base64) and its nonces: a request
without valid credentials is answered ``401`` with a new nonce, ``WWW-Authenticate:
Digest realm="<realm>", nonce="<nonce>", opaque="<opaque>", algorithm="MD5", qop="auth"``.
A request is let through when its ``Authorization: Digest`` parameters have this
instance's ``opaque``, ``algorithm`` MD5 (or none), ``qop`` auth, a ``uri`` that is the
request's target (or a prefix of its path, go-http-auth's leniency), a ``response``
computed from the user's htdigest hash, a nonce this instance issued and a nonce count
above the last one seen with it. A count equal to the last is a replay (a fresh
challenge), a lower one is answered with ``stale="true"`` in the challenge. Nonces
live in memory, per instance (per route), at most about 1100: past that the 200 least
recently used are forgotten, as go-http-auth does.

As in go-http-auth, a parameter written ``name="`` (a lone quote) makes its parser
slice past the end of the string: Go panics and Traefik's recovery answers ``500
Internal Server Error`` (observed on Traefik 3.7.15; ``name=`` is read as empty);
so does this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import DigestAuth as DigestAuthConfig
from ..entrypoint.context import forward_of, replace_forward
from ..responses import send_go_error
from ._auth import (
    AUTHORIZATION,
    DEFAULT_REALM,
    authenticated_headers,
    first,
    send_unauthorized,
)
from ._url import RequestURL, path_unescape

__all__ = ["CLIENT_CACHE_SIZE", "CLIENT_CACHE_TOLERANCE", "DigestAuth", "parse_pairs"]

CLIENT_CACHE_SIZE = 1000
"""go-http-auth's ``DefaultClientCacheSize``: nonces kept..."""
CLIENT_CACHE_TOLERANCE = 100
"""... plus this many before the ``2 * tolerance`` least recently seen are purged."""

_HEX = re.compile(r"[0-9A-Fa-f]+")


class _Panic(Exception):
    """Where go-http-auth's Go code panics (Traefik's recovery answers 500)."""


def _random_key() -> str:
    """go-http-auth's ``RandomKey``: 12 random bytes, standard base64 (16 characters)."""
    return base64.b64encode(secrets.token_bytes(12)).decode()


def _h(data: str) -> str:
    """go-http-auth's ``H``: the lowercase hex MD5 of ``data`` (Go's string bytes)."""
    return hashlib.md5(data.encode("latin-1")).hexdigest()


def _parse_list(value: str) -> list[str]:
    """go-http-auth's ``ParseList`` (urllib2's ``parse_http_list``): split on commas
    outside double quotes; inside them a backslash escapes the next character."""
    out: list[str] = []
    part: list[str] = []
    escape = quote = False
    for char in value:
        if escape:
            part.append(char)
            escape = False
        elif quote:
            if char == "\\":
                escape = True
            else:
                if char == '"':
                    quote = False
                part.append(char)
        elif char == ",":
            out.append("".join(part).strip())
            part = []
        else:
            if char == '"':
                quote = True
            part.append(char)
    if part:
        out.append("".join(part).strip())
    return out


def parse_pairs(value: str) -> dict[str, str]:
    """go-http-auth's ``ParsePairs``: ``name=value`` items, a value in double quotes
    unquoted, an item without ``=`` mapped to "". Raises :class:`_Panic` where Go
    panics (a value that is a lone ``"``)."""
    pairs: dict[str, str] = {}
    for pair in _parse_list(value.strip()):
        name, equals, v = pair.partition("=")
        if not equals:
            pairs[pair] = ""
            continue
        if v == '"':  # Go: v[1:0], slice bounds out of range
            raise _Panic(f"slice bounds out of range in {pair!r}")
        if v[:1] == '"' and v[-1:] == '"':
            v = v[1:-1]
        pairs[name] = v
    return pairs


def _digest_params(authorization: str) -> dict[str, str] | None:
    """go-http-auth's ``DigestAuthParams``: ``Digest`` (exactly) and the pairs."""
    scheme, space, rest = authorization.partition(" ")
    if not space or scheme != "Digest":
        return None
    return parse_pairs(rest)


def _url_path(uri: str) -> str | None:
    """``URL.Path`` of Go's ``url.Parse(uri)`` (None when Go refuses it)."""
    uri = uri.partition("#")[0].partition("?")[0]
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", uri)
    if scheme is not None:
        uri = uri[scheme.end() :]
        if not uri.startswith("/"):
            return ""  # opaque: no path
    if uri.startswith("//"):
        slash = uri.find("/", 2)
        uri = "" if slash == -1 else uri[slash:]
    path = path_unescape(uri.encode("latin-1"))
    return None if path is None else path.decode("latin-1")


class DigestAuth:
    def __init__(self, app: ASGIApp, config: DigestAuthConfig) -> None:
        self.app = app
        self.realm = (config.realm or DEFAULT_REALM).encode().decode("latin-1")
        # "user:realm" -> HA1, as Go's strings (bytes): latin-1 keeps every byte.
        self.users: dict[str, str] = {}
        for line in config.users:
            user, realm, ha1 = line.encode().decode("latin-1").split(":")
            self.users[f"{user}:{realm}"] = ha1
        self.opaque = _random_key()
        self.header_field = config.header_field.lower().encode()
        self.remove_header = config.remove_header
        # nonce -> [last nonce count seen, last seen (ns)]
        self.clients: dict[str, list[int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        try:
            user, stale = self.check(
                forward.method,
                forward.target,
                first(forward.headers, AUTHORIZATION).decode("latin-1"),
            )
        except _Panic:
            await send_go_error(send, 500, "Internal Server Error")
            return
        if user is None:
            await send_unauthorized(send, self.challenge(stale))
            return
        headers = authenticated_headers(
            forward.headers, user.encode("latin-1"), self.header_field, self.remove_header
        )
        await self.app(replace_forward(scope, headers=headers), receive, send)

    def check(self, method: str, target: bytes, authorization: str) -> tuple[str | None, bool]:
        """go-http-auth's ``CheckAuth``: (the user's name or None, whether stale)."""
        auth = _digest_params(authorization)
        if auth is None:
            return None, False
        auth.setdefault("algorithm", "MD5")
        if auth.get("opaque") != self.opaque or auth["algorithm"] != "MD5":
            return None, False
        if auth.get("qop") != "auth":
            return None, False
        uri = auth.get("uri", "")
        if target.decode("latin-1") != uri:
            # go-http-auth lets the uri be a prefix of the request's path.
            wanted, path = _url_path(uri), RequestURL.of(target).path.decode("latin-1")
            if wanted is None or len(wanted) > len(path) or not path.startswith(wanted):
                return None, False
        username = auth.get("username", "")
        ha1 = self.users.get(f"{username}:{self.realm}", "")
        ha2 = _h(f"{method}:{uri}")
        fields = [auth.get(k, "") for k in ("nonce", "nc", "cnonce", "qop")]
        kd = _h(":".join([ha1, *fields, ha2]))
        if not hmac.compare_digest(
            kd.encode("latin-1"), auth.get("response", "").encode("latin-1")
        ):
            return None, False
        nc_text = auth.get("nc", "")
        if _HEX.fullmatch(nc_text) is None or int(nc_text, 16) >= 1 << 64:
            return None, False  # Go's strconv.ParseUint(nc, 16, 64) fails
        nc = int(nc_text, 16)
        client = self.clients.get(auth.get("nonce", ""))
        if client is None:
            return None, False
        last = client[0]
        if last != 0:
            if nc == last:
                return None, False  # a replay
            if nc < last:
                return None, True  # out of order: stale, the client may retry at once
        client[0], client[1] = nc, time.monotonic_ns()
        return username, False

    def challenge(self, stale: bool) -> bytes:
        """go-http-auth's ``requireAuth``: a new nonce, remembered, in the challenge."""
        if len(self.clients) > CLIENT_CACHE_SIZE + CLIENT_CACHE_TOLERANCE:
            oldest = sorted(self.clients, key=lambda nonce: self.clients[nonce][1])
            for nonce in oldest[: CLIENT_CACHE_TOLERANCE * 2]:
                del self.clients[nonce]
        nonce = _random_key()
        self.clients[nonce] = [0, time.monotonic_ns()]
        text = f'Digest realm="{self.realm}", nonce="{nonce}", opaque="{self.opaque}", '
        if stale:
            text += 'stale="true", '
        text += 'algorithm="MD5", qop="auth"'
        return text.encode("latin-1")
