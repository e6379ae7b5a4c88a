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
from collections.abc import Awaitable, Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import Headers as HeadersConfig
from ..entrypoint.context import FORWARD_KEY, copy_scope, forward_of, replace_forward
from ..entrypoint.forwarding import HOP_BY_HOP, Forward
from ..responses import send_go_error
from ..rules._re2 import compile_re2

__all__ = ["Headers", "canonical_header_key", "go_sprintf_nonce"]

HeaderList = list[tuple[bytes, bytes]]

_XFF = b"x-forwarded-for"
_ACCEPT_ENCODING = b"accept-encoding"
_RESPONSE_STARTS = ("http.response.start", "websocket.http.response.start")
_copy_message: Callable[[Message], Message] = dict.copy  # type: ignore[assignment]


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


Ops = dict[bytes, tuple[bytes, bytes | None]]
"""Header operations by lowercase name: set ``(name, value)``, or delete (value None).
Traefik's ``Header.Set``/``Del`` calls one after another come down to the last one per
name, applied in one pass (:func:`_apply`)."""


def _apply(headers: Iterable[tuple[bytes, bytes]], ops: Ops) -> HeaderList:
    out = [kv for kv in headers if kv[0].lower() not in ops]
    out.extend((name, value) for name, value in ops.values() if value is not None)
    return out


def _ops(pairs: Iterable[tuple[bytes, bytes]]) -> Ops:
    """Each ``(name, value)`` as a set, an empty value as a delete."""
    return {name.lower(): (name, value or None) for name, value in pairs}


class _Modified:
    """A ``send`` applying ``ops`` to the answer's headers (and ``Vary: Origin``). A
    plain callable returning the next ``send``'s awaitable: an ``async def`` closure
    cost a coroutine per response message."""

    __slots__ = ("ops", "send", "vary")

    def __init__(self, send: Send, ops: Ops, vary: bool) -> None:
        self.send = send
        self.ops = ops
        self.vary = vary

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] in _RESPONSE_STARTS:
            out = _apply(message.get("headers", ()), self.ops)
            if self.vary:
                current = _first(out, b"vary")
                if current != b"Origin":
                    value = current + b",Origin" if current else b"Origin"
                    out = _apply(out, {b"vary": (b"Vary", value)})
            message = {**message, "headers": out}
        return self.send(message)


def _appending(send: Send, ops: Ops, added: HeaderList) -> Send:
    """``send`` for a middleware whose answer headers are fixed at build time (no CORS,
    no per-request secure header): ``added`` (``ops``' sets, in order) appended to the
    answer's headers, after the ones ``ops`` names are dropped (:class:`_Modified`'s
    work, with the usual answer, none of them set, costing one pass and no dict). A
    closure, not an instance: cheaper to make and to call, once per message."""

    def appending(message: Message) -> Awaitable[None]:
        if message["type"] in _RESPONSE_STARTS:
            headers = message.get("headers", ())
            if type(headers) is not list:  # (any iterable: read once)
                headers = list(headers)
            for name, _ in headers:
                if name.lower() in ops:
                    headers = _apply(headers, ops)
                    break
            else:
                headers = headers + added
            message = _copy_message(message)
            message["headers"] = headers
        return send(message)

    return appending


class Headers:
    owns_scope = False
    """Set by :func:`~.wrap` where the scope it is given is its own to change."""

    def __init__(self, app: ASGIApp, config: HeadersConfig) -> None:
        self.app = app
        self.config = config
        self.cors = config.has_cors_headers
        self.origins = tuple(o.encode() for o in config.access_control_allow_origin_list)
        self.origin_regexes = tuple(
            compile_re2(p) for p in config.access_control_allow_origin_list_regex
        )
        self.credentials = config.access_control_allow_credentials
        self._compile_request(config.custom_request_headers)
        self.custom_ops = _ops(
            (canonical_header_key(name).encode(), value.encode())
            for name, value in config.custom_response_headers
        )
        expose = config.access_control_expose_headers
        self.expose = b""
        if expose and not ("*" in expose and self.credentials):
            self.expose = ",".join(expose).encode()
        self.vary = config.add_vary_header
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
        self.sts = config.sts_seconds != 0 and not config.is_development
        self.pkp = bool(config.public_key) and not config.is_development
        self.static_secure = _ops(self._static_secure_headers())
        # Without CORS and per-request secure headers, every answer gets the same ops.
        dynamic = self.cors or self.sts or self.pkp or self.nonce
        self.static_ops: Ops | None = None if dynamic else {**self.static_secure, **self.custom_ops}
        # The usual configuration (no CORS, no per-request secure header, no host check)
        # has a path of its own: the request rewritten, the answer's headers appended.
        self.fixed = self.static_ops is not None and not self.check_hosts
        self.fixed_ops: Ops = self.static_ops or {}
        self.added: HeaderList | None = None  # None: the answer is left alone
        if self.fixed_ops:
            self.added = [(name, value) for name, value in self.fixed_ops.values() if value]

    def _compile_request(self, pairs: tuple[tuple[str, str], ...]) -> None:
        """Traefik's loop over ``customRequestHeaders`` as one-pass operations on the
        request the proxy will send (Go's proxy and transport rules included)."""
        ops: dict[bytes, bytes | None] = {}
        self.host: bytes | None = None
        self.xff: bytes | None = None  # b"": the client's address only; see below
        self.xff_omitted = False
        for name, text in pairs:
            lower, value = name.lower().encode(), text.encode()
            if lower == _XFF:
                # Go: nil for "X-Forwarded-For" spelt so (the proxy adds none), else
                # deleted or set, and the proxy appends the client's address.
                self.xff_omitted = not value and name == "X-Forwarded-For"
                self.xff = value
            elif not value:
                ops[lower] = None
            elif lower == b"host":
                self.host = value
            elif lower == b"te":  # the proxy keeps only "Te: trailers"
                trailers = b"trailers" in (t.strip().lower() for t in value.split(b","))
                ops[lower] = b"trailers" if trailers else None
            elif lower not in HOP_BY_HOP and lower not in (b"content-length", b"trailer"):
                ops[lower] = value
        self.rewrites_request = bool(pairs)
        self.touches_encoding = _ACCEPT_ENCODING in ops or b"range" in ops
        drop = set(ops) | ({_XFF} if self.xff is not None else set())
        self.request_drop = frozenset(drop)
        self.request_drop_gzip = frozenset(drop | {_ACCEPT_ENCODING})
        self.request_set = [(k, v) for k, v in ops.items() if v is not None]
        self.sets_only = self.xff is None and not self.touches_encoding

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

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """A plain callable returning the next app's awaitable on the usual path (no
        coroutine of its own), the general one (:meth:`_general`) otherwise."""
        if not self.fixed or scope["type"] not in ("http", "websocket"):
            return self._general(scope, receive, send)
        if self.rewrites_request:
            forward: Forward | None = scope.get(FORWARD_KEY)
            if forward is None:
                forward = forward_of(scope)
            scope = self._custom_request(scope, forward)
        if self.added is None:
            return self.app(scope, receive, send)
        return self.app(scope, receive, _appending(send, self.fixed_ops, self.added))

    async def _general(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        if self.cors and await self._preflight(forward, send):
            return
        if self.rewrites_request:
            scope = self._custom_request(scope, forward)
            forward = forward_of(scope)
        if self.static_ops is not None:
            if self.check_hosts and self._refused(forward):
                await send_go_error(self._modifier(send, self.custom_ops), 500, "Bad Host")
                return
            await self.app(scope, receive, self._modifier(send, self.static_ops))
            return
        outer = self.custom_ops
        if self.cors:
            outer = {**outer, **self._cors_response_ops(_first(forward.headers, b"origin"))}
        if self.check_hosts and self._refused(forward):
            await send_go_error(self._modifier(send, outer), 500, "Bad Host")
            return
        ops = {**self._secure_ops(scope, forward), **outer}
        await self.app(scope, receive, self._modifier(send, ops))

    def _modifier(self, send: Send, ops: Ops) -> Send:
        """``send`` whose answers (not a WebSocket's ``101``) get ``ops``, then, with
        ``addVaryHeader``, ``Origin`` appended to their first ``Vary``."""
        if not ops and not self.vary:
            return send
        return _Modified(send, ops, self.vary)

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

    def _cors_response_ops(self, origin: bytes) -> Ops:
        """What ``PostRequestModifyResponseHeaders`` sets after the custom headers
        (``Vary`` is merged by the modifier: it reads the answer's own)."""
        out: Ops = {}
        match = self._match_origin(origin)
        if match is not None:
            out[b"access-control-allow-origin"] = (b"Access-Control-Allow-Origin", match)
        if self.credentials:
            out[b"access-control-allow-credentials"] = (
                b"Access-Control-Allow-Credentials",
                b"true",
            )
        if self.expose:
            out[b"access-control-expose-headers"] = (b"Access-Control-Expose-Headers", self.expose)
        return out

    # -- custom request headers -----------------------------------------------------------

    def _custom_request(self, scope: Scope, forward: Forward) -> Scope:
        """``scope`` with the custom request headers applied to its request, as Go's
        proxy and transport then send it (``X-Forwarded-For``, ``Accept-Encoding``)."""
        if self.sets_only:
            # Only headers set or deleted (the usual): the request's list is copied only
            # when it has one of them.
            headers = forward.headers
            drop = self.request_drop
            for name, _ in headers:
                if name in drop:
                    headers = [kv for kv in headers if kv[0] not in drop]
                    headers.extend(self.request_set)
                    break
            else:
                headers = headers + self.request_set
            if not self.owns_scope:
                scope = copy_scope(scope)
            if self.host is None:
                scope[FORWARD_KEY] = forward.with_headers(headers)
            else:
                scope[FORWARD_KEY] = forward.evolve(headers=headers, host=self.host)
            return scope
        strip_gzip = self.touches_encoding and forward.gzip_added
        drop = self.request_drop_gzip if strip_gzip else self.request_drop
        headers = [kv for kv in forward.headers if kv[0] not in drop]
        headers.extend(self.request_set)
        if self.xff is not None and not self.xff_omitted:
            client = scope.get("client")
            entries = [self.xff, client[0].partition("%")[0].encode() if client else b""]
            joined = b", ".join(e for e in entries if e)
            if joined:
                headers.append((_XFF, joined))
        gzip_added = forward.gzip_added
        if self.touches_encoding:
            gzip_added = (
                not any(k == _ACCEPT_ENCODING or k == b"range" for k, _ in headers)
                and forward.method != "HEAD"
                and scope["type"] != "websocket"
            )
            if gzip_added:
                headers.append((_ACCEPT_ENCODING, b"gzip"))
        host = self.host if self.host is not None else forward.host
        return replace_forward(scope, headers=headers, host=host, gzip_added=gzip_added)

    # -- secure ---------------------------------------------------------------------------

    def _refused(self, forward: Forward) -> bool:
        """Whether the request's host (or the first ``hostsProxyHeaders`` header that is
        set) is not in ``allowedHosts`` (compared without case)."""
        host = forward.host or b""
        for name in self.hosts_proxy_headers:
            value = _first(forward.headers, name)
            if value:
                host = value
                break
        return host.decode("latin-1").lower() not in self.allowed_hosts

    def _is_ssl(self, scope: Scope, forward: Forward) -> bool:
        if scope.get("scheme") in ("https", "wss"):
            return True
        raw = scope.get("raw_path") or b""
        if raw[:8].lower() == b"https://":  # an absolute-form target: Go's URL.Scheme
            return True
        return any(_first(forward.headers, k) == v for k, v in self.ssl_proxy_headers)

    def _secure_ops(self, scope: Scope, forward: Forward) -> Ops:
        c = self.config
        ssl = (self.sts or self.pkp) and self._is_ssl(scope, forward)
        out = dict(self.static_secure)
        if self.sts and (ssl or c.force_sts_header):
            value = f"max-age={c.sts_seconds}"
            value += "; includeSubDomains" if c.sts_include_subdomains else ""
            value += "; preload" if c.sts_preload else ""
            out[b"strict-transport-security"] = (b"Strict-Transport-Security", value.encode())
        if self.pkp and ssl:
            out[b"public-key-pins"] = (b"Public-Key-Pins", c.public_key.encode())
        if self.nonce:
            nonce = base64.b64encode(os.urandom(16)).rstrip(b"=").decode()
            if self.csp:
                value = go_sprintf_nonce(self.csp, nonce)
                out[b"content-security-policy"] = (b"Content-Security-Policy", value.encode())
            if self.csp_report_only:
                value = go_sprintf_nonce(self.csp_report_only, nonce)
                name = b"Content-Security-Policy-Report-Only"
                out[name.lower()] = (name, value.encode())
        return out
