"""What a matched request looks like on its way to a backend, computed once per request.

Traefik rewrites the request at its entry point (``pkg/middlewares/forwardedheaders``)
and again in the reverse proxy (Go's ``httputil.ReverseProxy`` with Traefik's
``Rewrite``). Every backend of one request, the main service and each mirror, sees the
same result, so it is computed once when the route matches and carried in the scope
(:func:`~.context.forward_of`); a leaf only adds ``Host`` and the body framing.

The rules, each observed on Traefik 3.7.15 (``traefik-observed.md`` §C):

* from an untrusted peer (the default), every managed ``X-Forwarded-*`` / ``X-Real-Ip``
  header is removed first, underscore spellings (``X_Forwarded_For``) included;
* ``X-Real-Ip``, ``X-Forwarded-Proto``, ``-Port`` (from the Host header, else 80/443) and
  ``-Host`` are set when absent; ``X-Forwarded-Server`` is always our hostname; the client
  address is appended to ``X-Forwarded-For``;
* hop-by-hop headers and every header named in ``Connection`` are dropped (managed
  ``X-`` headers excepted, RFC 7230 §6.1); ``Te: trailers`` survives;
* ``Content-Length``/``Transfer-Encoding`` are rebuilt from the framing, so a backend
  never sees both; ``Accept-Encoding: gzip`` is added when the client sent none (Go's
  transport does, and then decompresses a gzip answer transparently);
* the target is the request path as Traefik's entry point normalises it (unreserved
  ``%XX`` decoded, other escapes upper-cased, ``//`` and dot segments cleaned) plus the
  query with ``;`` turned into ``&``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.types import Scope
from typing_extensions import dataclass_transform

from ..rules import absolute_form, forwarded_path

__all__ = [
    "Forward",
    "InvalidRequest",
    "has_token",
    "prepare",
    "request_protocol",
    "trusted_peers",
    "value_type",
]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

MANAGED_X_HEADERS = frozenset(
    {
        b"x-forwarded-proto",
        b"x-forwarded-scheme",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-server",
        b"x-forwarded-uri",
        b"x-forwarded-method",
        b"x-forwarded-prefix",
        b"x-forwarded-tls-client-cert",
        b"x-forwarded-tls-client-cert-info",
        b"x-scheme",
        b"x-real-ip",
    }
)

HOSTNAME = socket.gethostname().encode()

# Header names (as sent, already lowercase, without CR or LF) that prepare only copies:
# one set lookup each instead of the tests below (bench/README.md, session 8).
_PLAIN_NAMES: set[bytes] = set()
_PLAIN_NAMES_MAX = 4096


#: Bytes outside Go's ``httpguts.ValidHostHeader`` set (RFC 3986 reg-name, IP literal
#: and port characters): anything else, non-ASCII included, is a malformed Host.
_BAD_HOST_BYTE = re.compile(rb"[^-0-9A-Za-z!$%&'()*+,.:;=\[\]_~]")


class InvalidRequest(Exception):
    """A request Go's HTTP server refuses before any handler runs: answered 400, never
    forwarded. ``reply`` is the body Go's server writes (``400 Bad Request: malformed
    Host header``). Some (a header value with CR, LF or NUL) cannot arrive over the wire
    through an ASGI server; they guard apps that build scopes themselves."""

    def __init__(self, why: str, reply: str = "400 Bad Request") -> None:
        super().__init__(why)
        self.reply = reply


def trusted_peers(cidrs: Sequence[str], *, insecure: bool = False) -> Callable[[str], bool] | None:
    """Traefik's ``forwardedHeaders``: whose own ``X-Forwarded-*`` headers are kept.

    ``insecure`` trusts every peer; otherwise peers inside ``cidrs`` (IPs or CIDRs, IPv4
    or IPv6). Returns None when nobody is trusted, the default and the fast path.
    Raises ``ValueError`` naming the bad entry.
    """
    if insecure:
        return lambda ip: True
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"forwarded_trusted_ips: invalid IP or CIDR {cidr!r}") from None
    if not networks:
        return None

    def trusted(ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in networks)

    return trusted


def _is_managed(lower_name: bytes) -> bool:
    if not lower_name.startswith(b"x"):
        return False
    return lower_name in MANAGED_X_HEADERS or lower_name.replace(b"_", b"-") in MANAGED_X_HEADERS


def _tokens(value: bytes) -> list[bytes]:
    return [t.strip().lower() for t in value.split(b",") if t.strip()]


def _host_port(host: bytes) -> bytes:
    """The port of a Host value as Go's ``net.SplitHostPort`` finds it, or b""."""
    if host.startswith(b"["):
        end = host.find(b"]")
        if end != -1 and host[end + 1 : end + 2] == b":":
            return host[end + 2 :]
        return b""
    if host.count(b":") == 1:
        return host.rpartition(b":")[2]
    return b""


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def value_type(cls: type[_T]) -> type[_T]:
    """A dataclass immutable for the type checker (``mypy --strict`` runs in CI) and a
    plain slots class at run time: a frozen dataclass sets each field through
    ``object.__setattr__``, which made building a :class:`Forward` (one per request,
    one per rewriting middleware) twice as slow (bench/README.md)."""
    return dataclass(slots=True)(cls)


_new = object.__new__


def _copy(forward: Forward) -> Any:
    """A field-by-field copy of ``forward``, which the caller then changes (typed Any:
    a :class:`Forward` is immutable for the type checker)."""
    new: Any = _new(Forward)
    new.method = forward.method
    new.target = forward.target
    new.host = forward.host
    new.headers = forward.headers
    new.content_length = forward.content_length
    new.chunked = forward.chunked
    new.gzip_added = forward.gzip_added
    new.protocol = forward.protocol
    return new


@value_type
class Forward:
    """The request as every backend of this request will receive it."""

    method: str
    target: bytes  # path and query as sent upstream, e.g. b"/a%20b?x=1&y=2"
    host: bytes | None  # the client's Host header, for passHostHeader
    headers: list[tuple[bytes, bytes]]  # without Host and body-framing headers
    content_length: int | None  # None: no body or chunked (see chunked)
    chunked: bool
    gzip_added: bool  # Accept-Encoding: gzip was added by us, not by the client
    protocol: str = "http"  # Traefik's request protocol label (request_protocol)

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def evolve(self, **changes: Any) -> Forward:
        """A copy with ``changes`` (field names): ``dataclasses.replace`` without its
        per-field introspection, five times faster; rewriting middlewares call it per
        request (the commonest rewrites have their own: :meth:`with_target`,
        :meth:`with_headers`)."""
        new = _copy(self)
        for name, value in changes.items():
            setattr(new, name, value)
        result: Forward = new
        return result

    def with_target(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> Forward:
        """``evolve(target=target, headers=headers)`` without the keyword dict and the
        ``setattr`` calls (a path middleware's per-request copy)."""
        new = _copy(self)
        new.target = target
        new.headers = headers
        result: Forward = new
        return result

    def with_headers(self, headers: list[tuple[bytes, bytes]]) -> Forward:
        """``evolve(headers=headers)``, as :meth:`with_target`."""
        new = _copy(self)
        new.headers = headers
        result: Forward = new
        return result

    def framing_headers(self) -> list[tuple[bytes, bytes]]:
        """``Content-Length``/``Transfer-Encoding`` as Go's transport writes them."""
        if self.chunked:
            return [(b"transfer-encoding", b"chunked")]
        if self.content_length:
            return [(b"content-length", str(self.content_length).encode())]
        if self.method in ("POST", "PUT", "PATCH"):
            return [(b"content-length", b"0")]
        return []


def has_token(value: bytes | None, token: bytes) -> bool:
    """Traefik's ``containsHeader`` on one header value: an item of its comma-separated
    list equal to ``token`` once trimmed and lowercased (``token`` is lowercase)."""
    if value is None:
        return False
    value = value.lower()
    return token in value and token in [item.strip() for item in value.split(b",")]


def request_protocol(
    websocket: bool,
    connection: bytes | None,
    upgrade: bytes | None,
    accept: bytes | None,
    content_type: bytes | None,
) -> str:
    """Traefik's ``getRequestProtocol`` (its metrics' ``protocol`` label): ``websocket``,
    ``sse``, ``grpc-web``, ``grpc`` or ``http``, tested in that order on the first value
    of each header (Go's ``Header.Get``). Substring tests come before any token parsing:
    nearly every request is ``http``."""
    if websocket:
        return "websocket"
    if (
        connection is not None
        and b"upgrade" in connection.lower()
        and has_token(connection, b"upgrade")
        and has_token(upgrade, b"websocket")
    ):
        return "websocket"
    if (
        accept is not None
        and b"text/event-stream" in accept.lower()
        and has_token(accept, b"text/event-stream")
    ):
        return "sse"
    if content_type is not None and content_type.startswith(b"application/grpc"):
        return "grpc-web" if content_type.startswith(b"application/grpc-web") else "grpc"
    return "http"


def prepare(
    scope: Scope,
    *,
    trusted: Callable[[str], bool] | None = None,
    hostname: bytes = HOSTNAME,
    check_host: bool = True,
) -> Forward:
    """Compute the upstream view of ``scope`` (an ``http`` or ``websocket`` scope).

    ``trusted(client_ip)`` says whether the peer's own ``X-Forwarded-*`` headers are kept
    (Traefik's ``forwardedHeaders.trustedIPs``/``insecure``); by default none are.
    ``check_host`` refuses a missing or malformed ``Host`` as Go's server does; a node
    called without the entry point (no middleware) skips it.
    """
    client = scope.get("client")
    client_ip = client[0] if client else ""
    if "%" in client_ip:  # an IPv6 zone never goes upstream
        client_ip = client_ip.partition("%")[0]
    keep_x = trusted is not None and trusted(client_ip)

    host: bytes | None = None
    out: list[tuple[bytes, bytes]] = []
    connection: set[bytes] = set()
    prior_xff: list[bytes] = []
    present: set[bytes] = set()
    content_length: int | None = None
    chunked = False
    te_trailers = False
    accept_encoding: bytes | None = None  # the first value: Go's Header.Get
    has_range = False
    # The first values request_protocol reads.
    first_connection: bytes | None = None
    first_upgrade: bytes | None = None
    accept: bytes | None = None
    content_type: bytes | None = None

    for key, value in scope["headers"]:
        # Byte values, not one-byte strings: ``13 in value`` is a C scan, where Python 3.11's
        # ``b"\r" in value`` first tries the needle as an integer and formats that error.
        if 13 in value or 10 in value or 0 in value:  # CR LF NUL
            raise InvalidRequest(f"header {key!r} has a CR, LF or NUL byte")
        if key in _PLAIN_NAMES:  # (checked, lowercase, and nothing to do but copy it)
            out.append((key, value))
            continue
        if 10 in key or 13 in key:
            raise InvalidRequest(f"header {key!r} has a CR, LF or NUL byte")
        name = key.lower()
        if name == b"host":
            if host is not None:  # Go: "too many Host headers", answered as plain 400
                raise InvalidRequest("two Host headers")
            host = value
            continue
        if name in HOP_BY_HOP:
            if name == b"connection":
                if first_connection is None:
                    first_connection = value
                connection.update(_tokens(value))
            elif name == b"upgrade":
                if first_upgrade is None:
                    first_upgrade = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"te" and b"trailers" in _tokens(value):
                te_trailers = True
            continue
        if name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
            continue
        if _is_managed(name):
            if not keep_x:
                continue
            if name == b"x-forwarded-for":
                prior_xff.append(value)
                continue
            present.add(name)
        elif name == b"accept-encoding":
            if accept_encoding is None:
                accept_encoding = value
        elif name == b"range":
            has_range = True
        elif name == b"accept":
            if accept is None:
                accept = value
        elif name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == key and len(_PLAIN_NAMES) < _PLAIN_NAMES_MAX:
            _PLAIN_NAMES.add(key)
        out.append((name, value))

    method = scope.get("method", "GET")
    # Go's server checks the Host header first, even when the target names the host.
    if host is None:
        if check_host and scope.get("http_version") in ("1.1", "2") and method != "CONNECT":
            raise InvalidRequest(
                "no Host header", reply="400 Bad Request: missing required Host header"
            )
    elif check_host and _BAD_HOST_BYTE.search(host) is not None:
        raise InvalidRequest(
            f"malformed Host header {host!r}", reply="400 Bad Request: malformed Host header"
        )
    raw_path: bytes | None = scope.get("raw_path")
    if not raw_path:
        raw_path = quote(scope.get("path", "/"), safe="/%:@!$&'()*+,;=~").encode("latin-1")
    query: bytes = scope.get("query_string", b"")
    if not raw_path.startswith(b"/"):
        absolute = absolute_form(raw_path)
        if absolute is not None:  # GET http://a.example/x: routed and sent as Host a.example
            if b"@" in absolute[0]:
                raise InvalidRequest(f"userinfo in an absolute-form target {raw_path!r}")
            host, raw_path = absolute
        elif raw_path != b"*" or query:  # Go's url.ParseRequestURI
            raise InvalidRequest(f"invalid request target {raw_path!r}")
    normal = forwarded_path(raw_path)  # normalised and sanitised as Traefik's entry point
    if normal is None:
        raise InvalidRequest(f"invalid request path {raw_path!r}")
    target = normal + b"?" + query.replace(b";", b"&") if query else normal

    if connection:
        drop = {t for t in connection if not _is_managed(t)}
        out = [(k, v) for k, v in out if k not in drop]
    if te_trailers:
        out.append((b"te", b"trailers"))

    websocket = scope["type"] == "websocket"
    tls = scope.get("scheme") in ("https", "wss")
    if not present and not prior_xff and client_ip and host:
        # The usual request (none of the client's own X-Forwarded-* kept): the six
        # headers in one step, in the order of the general case below.
        ip = client_ip.encode()
        proto = (b"wss" if tls else b"ws") if websocket else (b"https" if tls else b"http")
        port = _host_port(host) if 58 in host else b""  # (58: ":")
        if not port:
            port = b"443" if tls else b"80"
        out += (
            (b"x-real-ip", ip),
            (b"x-forwarded-proto", proto),
            (b"x-forwarded-port", port),
            (b"x-forwarded-host", host),
            (b"x-forwarded-server", hostname),
            (b"x-forwarded-for", ip),
        )
    else:
        out = _forwarded_headers(out, present, prior_xff, client_ip, host, hostname, tls, websocket)

    gzip_added = not accept_encoding and not has_range and method != "HEAD" and not websocket
    if gzip_added:
        out.append((b"accept-encoding", b"gzip"))

    forward: Any = _new(Forward)  # (the fields set directly: no keyword call)
    forward.method = method
    forward.target = target
    forward.host = host
    forward.headers = out
    forward.content_length = content_length if not chunked else None
    forward.chunked = chunked
    forward.gzip_added = gzip_added
    forward.protocol = (
        request_protocol(websocket, first_connection, first_upgrade, accept, content_type)
        # Only where one of its tests can pass (nearly every request has an Accept);
        # ``find``, as ``bytes in bytes`` costs a formatted TypeError (see above).
        if websocket
        or first_connection is not None
        or content_type is not None
        or (accept is not None and accept.lower().find(b"text/event-stream") >= 0)
        else "http"
    )
    result: Forward = forward
    return result


def _forwarded_headers(
    out: list[tuple[bytes, bytes]],
    present: set[bytes],
    prior_xff: list[bytes],
    client_ip: str,
    host: bytes | None,
    hostname: bytes,
    tls: bool,
    websocket: bool,
) -> list[tuple[bytes, bytes]]:
    """``out`` with Traefik's ``X-Real-Ip`` and ``X-Forwarded-*`` headers, those the
    client sent (``present``, kept from a trusted peer) left as they are."""
    if b"x-real-ip" not in present and client_ip:
        out.append((b"x-real-ip", client_ip.encode()))
    proto = b""
    if b"x-forwarded-proto" in present:
        proto = next(v for k, v in out if k == b"x-forwarded-proto")
    else:
        proto = (b"wss" if tls else b"ws") if websocket else (b"https" if tls else b"http")
        out.append((b"x-forwarded-proto", proto))
    if b"x-forwarded-port" not in present:
        port = _host_port(host or b"")
        if not port:
            port = b"443" if proto in (b"https", b"wss") or tls else b"80"
        out.append((b"x-forwarded-port", port))
    if b"x-forwarded-host" not in present and host:
        out.append((b"x-forwarded-host", host))
    if b"x-forwarded-server" in present:
        out = [(k, v) for k, v in out if k != b"x-forwarded-server"]
    out.append((b"x-forwarded-server", hostname))
    if client_ip:
        out.append((b"x-forwarded-for", b", ".join([*prior_xff, client_ip.encode()])))
    elif prior_xff:
        out.append((b"x-forwarded-for", b", ".join(prior_xff)))
    return out
