"""``headers`` (Traefik's ``pkg/middlewares/headers``): custom request and response
headers, CORS, and the secure headers of ``unrolled/secure``, in Traefik's order.

Traefik chains two handlers, the custom/CORS one outermost:

1. **CORS preflight**: with any CORS option, an ``OPTIONS`` request with both ``Origin``
   and ``Access-Control-Request-Method`` is answered here, ``200`` with an empty body
   and only the CORS headers (no custom or secure header, nothing forwarded).
2. **Custom request headers**, in the order written: an empty value removes the
   header (``X-Forwarded-For`` spelt so: the proxy then adds none at all), ``Host``
   sets the request's host, anything else replaces the header.
3. **Secure**: a request whose host (or the first ``hostsProxyHeaders`` header that is
   set) is not in ``allowedHosts`` is answered ``500 Bad Host`` (Go's ``http.Error``);
   otherwise the secure response headers are computed now (``Strict-Transport-Security``
   only over TLS, an ``https`` absolute-form target, a matching ``sslProxyHeaders``
   header or with ``forceSTSHeader``; ``$NONCE`` in a policy is a fresh nonce).
4. **The answer**, whatever produced it (the backend, an error, ``Bad Host``): first
   the secure headers set, then the custom response headers (empty: removed), then
   ``Access-Control-Allow-Origin`` for a matching ``Origin`` (read after step 2),
   ``-Allow-Credentials``, ``-Expose-Headers`` and ``Vary: Origin``. A WebSocket's
   ``101`` is left alone, as Traefik's response modifier lets 1xx answers through.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import Headers as HeadersConfig
from ..entrypoint.context import forward_of, replace_forward
from ..entrypoint.forwarding import HOP_BY_HOP, Forward
from ..responses import send_go_error
from ..rules._re2 import compile_re2

__all__ = ["Headers", "canonical_header_key", "go_sprintf_nonce"]

HeaderList = list[tuple[bytes, bytes]]

_XFF = b"x-forwarded-for"
_ACCEPT_ENCODING = b"accept-encoding"
_RESPONSE_STARTS = ("http.response.start", "websocket.http.response.start")


def canonical_header_key(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` for a token: ``x-foo`` -> ``X-Foo``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def go_sprintf_nonce(template: str, nonce: str) -> str:
    """Go's ``fmt.Sprintf(template, nonce)``, for the policies ``unrolled/secure``
    formats once ``$NONCE`` became ``'nonce-%[1]s'``: ``%%``, ``%[1]s``/``%s``/``%v`` and
    Go's error texts for any other verb, a missing or an unused argument."""
    out: list[str] = []
    used = reordered = False
    arg = 0
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(template):
            out.append("%!(NOVERB)")
            break
        if template[i] == "%":
            out.append("%")
            i += 1
            continue
        if template.startswith("[1]", i):
            arg, reordered = 0, True
            i += 3
            if i >= len(template):
                out.append("%!(NOVERB)")
                break
        verb = template[i]
        i += 1
        if arg >= 1:
            out.append(f"%!{verb}(MISSING)")
        elif verb in "sv":
            out.append(nonce)
        else:
            out.append(f"%!{verb}(string={nonce})")
        arg += 1
        used = True
    if not used and not reordered:
        out.append(f"%!(EXTRA string={nonce})")
    return "".join(out)


def _first(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes:
    """Go's ``Header.Get``: the first value, ``b""`` when absent."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return b""


def _set(headers: HeaderList, name: bytes, value: bytes) -> None:
    lower = name.lower()
    headers[:] = [(k, v) for k, v in headers if k.lower() != lower]
    headers.append((name, value))


def _delete(headers: HeaderList, name: bytes) -> None:
    lower = name.lower()
    headers[:] = [(k, v) for k, v in headers if k.lower() != lower]


class Headers:
    def __init__(self, app: ASGIApp, config: HeadersConfig) -> None:
        self.app = app
        self.config = config
        self.cors = config.has_cors_headers
        self.origins = tuple(o.encode() for o in config.access_control_allow_origin_list)
        self.origin_regexes = tuple(
            compile_re2(p) for p in config.access_control_allow_origin_list_regex
        )
        self.credentials = config.access_control_allow_credentials
        self.request_headers = tuple(
            (name, name.lower().encode(), value.encode())
            for name, value in config.custom_request_headers
        )
        self.touches_encoding = any(
            lower in (_ACCEPT_ENCODING, b"range") for _, lower, _ in self.request_headers
        )
        self.response_headers = tuple(
            (canonical_header_key(name).encode(), value.encode())
            for name, value in config.custom_response_headers
        )
        expose = config.access_control_expose_headers
        self.expose = b""
        if expose and not ("*" in expose and self.credentials):
            self.expose = ",".join(expose).encode()
        self.allowed_hosts = frozenset(h.lower() for h in config.allowed_hosts)
        self.check_hosts = bool(self.allowed_hosts) and not config.is_development
        self.hosts_proxy_headers = tuple(h.lower().encode() for h in config.hosts_proxy_headers)
        self.ssl_proxy_headers = tuple(
            (k.lower().encode(), v.encode()) for k, v in config.ssl_proxy_headers
        )
        csp = config.content_security_policy.replace("$NONCE", "'nonce-%[1]s'")
        csp_ro = config.content_security_policy_report_only.replace("$NONCE", "'nonce-%[1]s'")
        self.nonce = "%[1]s" in csp or "%[1]s" in csp_ro
        self.csp, self.csp_report_only = csp, csp_ro
        self.static_secure = self._static_secure_headers()

    def _static_secure_headers(self) -> HeaderList:
        """The secure headers that depend on nothing in the request."""
        c = self.config
        out: HeaderList = []
        if c.custom_frame_options_value:
            out.append((b"X-Frame-Options", c.custom_frame_options_value.encode()))
        elif c.frame_deny:
            out.append((b"X-Frame-Options", b"DENY"))
        if c.content_type_nosniff:
            out.append((b"X-Content-Type-Options", b"nosniff"))
        if c.custom_browser_xss_value:
            out.append((b"X-Xss-Protection", c.custom_browser_xss_value.encode()))
        elif c.browser_xss_filter:
            out.append((b"X-Xss-Protection", b"1; mode=block"))
        if not self.nonce:
            if self.csp:
                out.append((b"Content-Security-Policy", self.csp.encode()))
            if self.csp_report_only:
                out.append((b"Content-Security-Policy-Report-Only", self.csp_report_only.encode()))
        if c.referrer_policy:
            out.append((b"Referrer-Policy", c.referrer_policy.encode()))
        if c.permissions_policy:
            out.append((b"Permissions-Policy", c.permissions_policy.encode()))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        if self.cors and await self._preflight(forward, send):
            return
        if self.request_headers:
            headers, host, gzip_added = self._custom_request(scope, forward)
            scope = replace_forward(scope, headers=headers, host=host, gzip_added=gzip_added)
            forward = forward_of(scope)
        if self.cors or self.response_headers:
            cors = self._cors_response_headers(_first(forward.headers, b"origin"))
            send = self._response_modifier(send, cors, outer=True)
        if self.check_hosts and self._host(forward).lower() not in self.allowed_hosts:
            await send_go_error(send, 500, "Bad Host")
            return
        secure = self._secure_headers(scope, forward)
        if secure:
            send = self._response_modifier(send, secure, outer=False)
        await self.app(scope, receive, send)

    # -- CORS -----------------------------------------------------------------------------

    def _match_origin(self, origin: bytes) -> bytes | None:
        for item in self.origins:
            if item == origin:
                return item
            if item == b"*":
                return origin if self.credentials else item
        text = origin.decode("latin-1")
        for regex in self.origin_regexes:
            if regex.search(text):
                return origin
        return None

    async def _preflight(self, forward: Forward, send: Send) -> bool:
        method = _first(forward.headers, b"access-control-request-method")
        origin = _first(forward.headers, b"origin")
        if not method or not origin or forward.method != "OPTIONS":
            return False
        c = self.config
        headers: HeaderList = []
        if self.credentials:
            headers.append((b"Access-Control-Allow-Credentials", b"true"))
        if "*" in c.access_control_allow_headers and self.credentials:
            requested = _first(forward.headers, b"access-control-request-headers")
            if requested:
                headers.append((b"Access-Control-Allow-Headers", requested))
        elif c.access_control_allow_headers:
            allowed = ",".join(c.access_control_allow_headers).encode()
            headers.append((b"Access-Control-Allow-Headers", allowed))
        if "*" in c.access_control_allow_methods and self.credentials:
            headers.append((b"Access-Control-Allow-Methods", method))
        elif c.access_control_allow_methods:
            allowed = ",".join(c.access_control_allow_methods).encode()
            headers.append((b"Access-Control-Allow-Methods", allowed))
        match = self._match_origin(origin)
        if match is not None:
            headers.append((b"Access-Control-Allow-Origin", match))
        if c.access_control_max_age is not None:
            headers.append((b"Access-Control-Max-Age", str(c.access_control_max_age).encode()))
        if self.expose:
            headers.append((b"Access-Control-Expose-Headers", self.expose))
        headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    def _cors_response_headers(self, origin: bytes) -> HeaderList:
        """What ``PostRequestModifyResponseHeaders`` sets after the custom headers
        (``Vary`` is merged in the modifier: it reads the answer's own)."""
        out: HeaderList = []
        match = self._match_origin(origin)
        if match is not None:
            out.append((b"Access-Control-Allow-Origin", match))
        if self.credentials:
            out.append((b"Access-Control-Allow-Credentials", b"true"))
        if self.expose:
            out.append((b"Access-Control-Expose-Headers", self.expose))
        return out

    def _response_modifier(self, send: Send, headers: HeaderList, *, outer: bool) -> Send:
        """``send`` whose answers get ``headers`` set; the ``outer`` (custom/CORS)
        modifier sets the custom response headers first and merges ``Vary`` last."""
        response_headers = self.response_headers if outer else ()
        vary = outer and self.config.add_vary_header

        async def modified(message: Message) -> None:
            if message["type"] in _RESPONSE_STARTS:
                out = list(message.get("headers", ()))
                for name, value in response_headers:
                    if value:
                        _set(out, name, value)
                    else:
                        _delete(out, name)
                for name, value in headers:
                    _set(out, name, value)
                if vary:
                    current = _first(out, b"vary")
                    if current != b"Origin":
                        _set(out, b"Vary", current + b",Origin" if current else b"Origin")
                message = {**message, "headers": out}
            await send(message)

        return modified

    # -- custom request headers -----------------------------------------------------------

    def _custom_request(
        self, scope: Scope, forward: Forward
    ) -> tuple[HeaderList, bytes | None, bool]:
        """The request's headers, host and ``gzip_added`` once the custom request
        headers are applied as Go's proxy then sends them."""
        headers = list(forward.headers)
        host = forward.host
        gzip_added = forward.gzip_added
        if self.touches_encoding and gzip_added:
            headers = [(k, v) for k, v in headers if k != _ACCEPT_ENCODING]
        client = scope.get("client")
        client_ip = client[0].partition("%")[0].encode() if client else b""
        for name, lower, value in self.request_headers:
            if lower == _XFF:
                _delete(headers, _XFF)
                if not value and name == "X-Forwarded-For":
                    continue  # Go's nil header: the proxy adds none
                entries = [e for e in (value, client_ip) if e]
                if entries:
                    headers.append((_XFF, b", ".join(entries)))
            elif not value:
                _delete(headers, lower)
            elif lower == b"host":
                host = value
            elif lower in HOP_BY_HOP:
                if lower == b"te":  # the proxy keeps only "Te: trailers"
                    _delete(headers, lower)
                    if b"trailers" in (t.strip().lower() for t in value.split(b",")):
                        headers.append((lower, b"trailers"))
            elif lower not in (b"content-length", b"trailer"):
                _set(headers, lower, value)
        if self.touches_encoding:
            gzip_added = (
                not any(k == _ACCEPT_ENCODING for k, _ in headers)
                and not any(k == b"range" for k, _ in headers)
                and forward.method != "HEAD"
                and scope["type"] != "websocket"
            )
            if gzip_added:
                headers.append((_ACCEPT_ENCODING, b"gzip"))
        return headers, host, gzip_added

    # -- secure ---------------------------------------------------------------------------

    def _host(self, forward: Forward) -> str:
        for name in self.hosts_proxy_headers:
            value = _first(forward.headers, name)
            if value:
                return value.decode("latin-1")
        return (forward.host or b"").decode("latin-1")

    def _is_ssl(self, scope: Scope, forward: Forward) -> bool:
        if scope.get("scheme") in ("https", "wss"):
            return True
        raw = scope.get("raw_path") or b""
        if raw[:8].lower() == b"https://":  # an absolute-form target: Go's URL.Scheme
            return True
        return any(_first(forward.headers, k) == v for k, v in self.ssl_proxy_headers)

    def _secure_headers(self, scope: Scope, forward: Forward) -> HeaderList:
        c = self.config
        sts = c.sts_seconds != 0 and not c.is_development
        pkp = bool(c.public_key) and not c.is_development
        ssl = (sts or pkp) and self._is_ssl(scope, forward)
        out: HeaderList = []
        if sts and (ssl or c.force_sts_header):
            value = f"max-age={c.sts_seconds}"
            value += "; includeSubDomains" if c.sts_include_subdomains else ""
            value += "; preload" if c.sts_preload else ""
            out.append((b"Strict-Transport-Security", value.encode()))
        out.extend(self.static_secure)
        if pkp and ssl:
            out.append((b"Public-Key-Pins", c.public_key.encode()))
        if self.nonce:
            nonce = base64.b64encode(os.urandom(16)).rstrip(b"=").decode()
            if self.csp:
                out.append((b"Content-Security-Policy", go_sprintf_nonce(self.csp, nonce).encode()))
            if self.csp_report_only:
                value = go_sprintf_nonce(self.csp_report_only, nonce)
                out.append((b"Content-Security-Policy-Report-Only", value.encode()))
        return out
