"""The per-request view every rule matches against, computed lazily and once.

A request may be tried against many routes, so nothing here is computed until a matcher
asks for it, and nothing is computed twice: each field sits in a slot, filled on first
access. The values are the ones Traefik's matchers see, which are *not* always the raw
ASGI values:

* ``host``: Traefik's canonical host, ``ToLower(TrimSpace(parseHost(req.Host)))`` from
  ``requestdecorator``: port stripped (``[::1]:80`` → ``::1``), lowercased. A trailing
  dot is kept, as in Traefik; the ``Host`` matcher tolerates it on either side. With no
  ``Host`` header the host is empty (Go never falls back to the listening address). An
  absolute-form target's authority wins over the header; non-ASCII bytes are never
  folded (Go's server refuses them before routing).
* ``path``: Traefik's *routing path*. Go starts from the escaped path as sent, the
  entrypoint normalises it (``%7e`` → ``~``, ``%2f`` → ``%2F``) and sanitises it (``/./``,
  ``/../`` and ``//`` removed, default ``sanitizePath: true``), then the muxer decodes
  every ``%XX`` except reserved characters. So ``/foo%20bar`` is routed as ``/foo bar``
  while ``/a%2Fb`` stays ``/a%2Fb``. Built from ``scope["raw_path"]``; when a server
  leaves that out, from ``scope["path"]``, which cannot tell ``%2F`` from ``/``.
  ``None`` when the raw path has an invalid percent-encoding (Go would answer 400).
* ``headers``: names lowercased, one entry per header line, ``Host`` excluded (Go moves
  it out of ``req.Header`` into ``req.Host``).
* ``query``: ``url.ParseQuery`` after Traefik's default ``AllowQuerySemicolons``
  (``;`` separates pairs like ``&``); pairs with a bad escape are skipped.

Byte strings (paths, header values, query values) are decoded as UTF-8 with
``surrogateescape`` so they compare byte for byte, as Go strings do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["RequestView"]

_UNSET: Any = object()
# Host header -> canonical host (RequestView.host): the same few Hosts come again and
# again, and the canonical form takes three calls to compute.
_CANONICAL_HOSTS: dict[str, str] = {}
_CANONICAL_HOSTS_MAX = 4096

#: Go's ``unicode.IsSpace`` (``strings.TrimSpace``); Python's ``str.strip`` also trims
#: ``\x1c``-``\x1f``, which Go keeps.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_HEXDIGITS = b"0123456789abcdefABCDEF"
#: Percent-encodings the muxer leaves encoded (RFC 3986 reserved, plus ``%``).
_RESERVED = frozenset(
    b"%" + code
    for code in (
        b"3A", b"2F", b"3F", b"23", b"5B", b"5D", b"40", b"21", b"24",
        b"26", b"27", b"28", b"29", b"2A", b"2B", b"2C", b"3B", b"3D", b"25",
    )
)  # fmt: skip
#: Unreserved characters, decoded by the entrypoint's ``normalizePath``.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: Bytes Go's ``validEncoded`` accepts unescaped in a path.
_VALID_IN_PATH = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@[]%/"
)
#: Bytes Go's ``escape(s, encodePath)`` leaves alone.
_PATH_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+,/:;=@"
)


def go_lower(text: str) -> str:
    """Go's ``strings.ToLower``: simple per-rune mapping (U+0130 to ``i``, no final sigma)."""
    if text.isascii():
        return text.lower()
    out = []
    for ch in text:
        low = ch.lower()
        out.append(low if len(low) == 1 else "i" if ch == "\u0130" else ch)
    return "".join(out)


def _split_host_port(addr: str) -> str | None:
    """Go's ``net.SplitHostPort``, host part only; ``None`` where Go returns an error."""
    i = addr.rfind(":")
    if i < 0:
        return None
    j = k = 0
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or end + 1 == len(addr) or end + 1 != i:
            return None
        host = addr[1:end]
        j, k = 1, end + 1
    else:
        host = addr[:i]
        if ":" in host:
            return None
    if "[" in addr[j:] or "]" in addr[k:]:
        return None
    return host


def parse_host(addr: str) -> str:
    """Traefik's ``requestdecorator.parseHost``: drop the port, unwrap ``[v6]``."""
    if ":" not in addr:
        return addr
    host = _split_host_port(addr)
    if host is None:
        if addr.startswith("[") and addr.endswith("]"):
            return addr[1:-1]
        return addr
    return host


def mux_parse_host(addr: str) -> str:
    """gorilla/mux's ``parseHost`` (v2 ``HostRegexp``): like ``parse_host`` minus unwrapping."""
    if ":" not in addr:
        return addr
    host = _split_host_port(addr)
    return addr if host is None else host


_PERCENT, _PLUS = ord("%"), ord("+")
"""Byte values to test membership with: ``37 in raw`` is a C scan, where Python 3.11's
``b"%" in raw`` first tries the needle as an integer and formats that error (20x)."""


def _unescape(raw: bytes, plus_is_space: bool) -> bytes | None:
    """Go's ``url.unescape``: decode every ``%XX``; ``None`` on a malformed escape."""
    if _PERCENT not in raw and not (plus_is_space and _PLUS in raw):
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= n:
                return None
            a, b = raw[i + 1], raw[i + 2]
            if a not in _HEXDIGITS or b not in _HEXDIGITS:
                return None
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        elif c == 0x2B and plus_is_space:
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    return bytes(out)


_PATH_SAFE_BYTES = bytes(sorted(_PATH_SAFE))
_VALID_IN_PATH_BYTES = bytes(sorted(_VALID_IN_PATH))


def only_bytes_of(data: bytes, allowed: bytes) -> bool:
    """Whether every byte of ``data`` is one of ``allowed`` (a C-speed scan: deleting
    the allowed bytes leaves nothing)."""
    return not data.translate(None, allowed)


def _escape_path(path: bytes) -> bytes:
    """Go's ``url.escape(s, encodePath)``."""
    if only_bytes_of(path, _PATH_SAFE_BYTES):  # the common case: nothing to escape
        return path
    return b"".join(bytes((c,)) if c in _PATH_SAFE else b"%%%02X" % c for c in path)


def _normalize(raw: bytes) -> bytes:
    """The entrypoint's ``normalizePath``: upper-case ``%xx``, decode unreserved ones."""
    if _PERCENT not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        if raw[i] != 0x25:
            out.append(raw[i])
            i += 1
            continue
        code = raw[i : i + 3].upper()
        value = int(code[1:], 16)
        if value in _UNRESERVED:
            out.append(value)
        else:
            out += code
        i += 3
    return bytes(out)


def _go_clean(path: bytes) -> bytes:
    """Go's ``path.Clean`` for a rooted path."""
    parts: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return b"/" + b"/".join(parts)


def _sanitize(escaped: bytes) -> bytes:
    """The entrypoint's ``sanitizePath`` (``URL.JoinPath()`` on the escaped path)."""
    if not escaped:
        return escaped
    rooted = escaped.startswith(b"/")
    cleaned = _go_clean(escaped) if rooted else _go_clean(b"/" + escaped)[1:]
    if escaped.endswith(b"/") and not cleaned.endswith(b"/"):
        cleaned += b"/"
    return cleaned


def _decode_unreserved(escaped: bytes) -> bytes:
    """The muxer's ``withRoutingPath``: decode every ``%XX`` but reserved characters."""
    if _PERCENT not in escaped:
        return escaped
    out = bytearray()
    i, n = 0, len(escaped)
    while i < n:
        if escaped[i] != 0x25:
            out.append(escaped[i])
            i += 1
            continue
        code = escaped[i : i + 3]
        if code in _RESERVED:
            out += code
        else:
            out.append(int(code[1:], 16))
        i += 3
    return bytes(out)


# Anything that normalising or sanitising could change, that Go would refuse, or that
# Go's ``URL.EscapedPath`` would escape: every byte outside ``_VALID_IN_PATH`` (``%``,
# controls, space, non-ASCII, ``\\ " < > { } | ^`` and backquote) and ``//``, ``/.``.
_NOT_PLAIN = re.compile(rb"[^-A-Za-z0-9._~!$&'()*+,;=:@\[\]/]|//|/\.")

#: An absolute-form request target (``http://host/path``): scheme, authority, path.
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)(.*)", re.DOTALL)


def absolute_form(raw: bytes) -> tuple[bytes, bytes] | None:
    """The authority and path of an absolute-form target (``GET http://a.example/x``), or
    None for any other form. Go's server then takes ``req.Host`` from the authority (RFC
    9112 §3.2.2: the Host header is ignored); an empty path is ``/``. Only servers that
    keep the target whole in ``raw_path`` (uvicorn's h11) let us see the authority."""
    if raw[:1] == b"/":
        return None
    match = _ABSOLUTE_FORM.fullmatch(raw)
    if match is None:
        return None
    return match[1], match[2] or b"/"


def forwarded_path(raw: bytes) -> bytes | None:
    """The path as Traefik's entry point leaves it, still escaped: what the backend gets.

    Unreserved ``%XX`` decoded, other escapes upper-cased, ``//`` and dot segments
    cleaned (``sanitizePath``); None where Go's ``url.Parse`` refuses the path (400).
    """
    if raw.startswith(b"/") and _NOT_PLAIN.search(raw) is None:
        return raw  # already normal: the common case, one C-speed scan
    if any(c < 0x20 or c == 0x7F for c in raw):
        return None  # Go's url.Parse refuses control characters
    decoded = _unescape(raw, plus_is_space=False)
    if decoded is None:
        return None
    # Go's URL.EscapedPath(): the path as sent if validly encoded, else re-escaped.
    valid = all(c in _VALID_IN_PATH for c in raw)
    return _sanitize(_normalize(raw) if valid else _escape_path(decoded))


def routing_path(raw: bytes) -> str | None:
    """The path Traefik routes on, from the request-target path as sent (see module doc)."""
    escaped = forwarded_path(raw)
    if escaped is None:
        return None
    return _decode_unreserved(escaped).decode("utf-8", "surrogateescape")


def parse_query(raw: bytes) -> dict[str, tuple[str, ...]]:
    """Go's ``url.ParseQuery`` after ``http.AllowQuerySemicolons``."""
    values: dict[str, list[str]] = {}
    for pair in raw.replace(b";", b"&").split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        dkey = _unescape(key, plus_is_space=True)
        dvalue = _unescape(value, plus_is_space=True)
        if dkey is None or dvalue is None:
            continue
        values.setdefault(dkey.decode("utf-8", "surrogateescape"), []).append(
            dvalue.decode("utf-8", "surrogateescape")
        )
    return {key: tuple(vals) for key, vals in values.items()}


def parse_client_ip(
    address: str,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``netip.ParseAddr`` as used by ``ip.Checker``: zone dropped, v4-in-v6 unwrapped."""
    if not address or not address.isascii():
        return None
    try:
        ip = ipaddress.ip_address(address.partition("%")[0] if ":" in address else address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class RequestView:
    """What the matchers read from one ASGI ``http``/``websocket`` scope.

    Build it once per request and pass it to every rule tried: each field is computed
    on first use and cached in a slot.
    """

    __slots__ = (
        "_client_ip",
        "_headers",
        "_host",
        "_host_header",
        "_method",
        "_path",
        "_query",
        "scope",
    )

    def __init__(self, scope: Mapping[str, Any], host: bytes | None = _UNSET) -> None:
        """``host``, when given, is the request's Host as the entry point already found
        it (``prepare``'s ``Forward.host``: the first ``Host`` header, or the authority
        of an absolute-form target; None: neither), so :attr:`host_header` needs no
        second pass over the headers."""
        self.scope = scope
        self._method: str = _UNSET
        self._host_header: str = (
            host
            if host is _UNSET
            else ""
            if host is None
            else host.decode("ascii", "surrogateescape")
        )
        self._host: str = _UNSET
        self._path: str | None = _UNSET
        self._headers: dict[str, tuple[str, ...]] = _UNSET
        self._query: dict[str, tuple[str, ...]] = _UNSET
        self._client_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = _UNSET

    @property
    def method(self) -> str:
        """The request method as sent (a WebSocket handshake is a ``GET``)."""
        if self._method is _UNSET:
            self._method = str(self.scope.get("method", "GET"))
        return self._method

    @property
    def host_header(self) -> str:
        """Go's ``req.Host``: the authority of an absolute-form target, else the first
        ``Host`` header as sent, else ``""``. Bytes outside ASCII stay undecoded (lone
        surrogates), so no Unicode case or space folding turns ``admİn`` or ``admin\xa0``
        into an ASCII name (Go's server refuses such a Host outright)."""
        if self._host_header is _UNSET:
            value = ""
            raw_path = self.scope.get("raw_path") or b"/"
            absolute = None if raw_path[:1] == b"/" else absolute_form(bytes(raw_path))
            if absolute is not None:
                value = absolute[0].decode("ascii", "surrogateescape")
            else:
                for name, raw in self.scope.get("headers", ()):
                    if name.lower() == b"host":
                        value = bytes(raw).decode("ascii", "surrogateescape")
                        break
            self._host_header = value
        return self._host_header

    @property
    def host(self) -> str:
        """Traefik's canonical host: no port, trimmed, lowercased (trailing dot kept)."""
        if self._host is _UNSET:
            header = self.host_header
            host = _CANONICAL_HOSTS.get(header)
            if host is None:
                host = go_lower(parse_host(header).strip(_GO_SPACE))
                if len(_CANONICAL_HOSTS) < _CANONICAL_HOSTS_MAX:
                    _CANONICAL_HOSTS[header] = host
            self._host = host
        return self._host

    @property
    def path(self) -> str | None:
        """Traefik's routing path (see the module docstring), or ``None`` if invalid."""
        if self._path is _UNSET:
            raw = self.scope.get("raw_path")
            if raw is None:
                path = str(self.scope.get("path", "/"))
                raw = _escape_path(path.encode("utf-8", "surrogatepass"))
            else:
                raw = bytes(raw)
                if raw[:1] != b"/" and (absolute := absolute_form(raw)) is not None:
                    raw = absolute[1]
            self._path = routing_path(raw)
        return self._path

    @property
    def headers(self) -> dict[str, tuple[str, ...]]:
        """Header values by lowercased name, one value per header line, ``host`` excluded."""
        if self._headers is _UNSET:
            grouped: dict[str, list[str]] = {}
            for name, value in self.scope.get("headers", ()):
                key = bytes(name).lower().decode("latin-1")
                if key == "host":
                    continue
                grouped.setdefault(key, []).append(bytes(value).decode("utf-8", "surrogateescape"))
            self._headers = {key: tuple(values) for key, values in grouped.items()}
        return self._headers

    @property
    def query(self) -> dict[str, tuple[str, ...]]:
        """Query arguments, parsed like Go's ``url.ParseQuery`` (see module docstring)."""
        if self._query is _UNSET:
            self._query = parse_query(bytes(self.scope.get("query_string", b"")))
        return self._query

    @property
    def client_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The peer address (``scope["client"][0]``), IPv4-mapped IPv6 unwrapped."""
        if self._client_ip is _UNSET:
            client = self.scope.get("client")
            self._client_ip = parse_client_ip(str(client[0])) if client else None
        return self._client_ip
