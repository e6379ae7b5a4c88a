"""Sticky sessions by cookie, as Traefik 3.7 writes and reads them.

Traefik's ``pkg/server/cookie`` and ``loadbalancer/wrr/sticky.go`` fix every observable
detail, and clients depend on them (a cookie set by Traefik must keep working here):

* the cookie's name and attributes are :class:`~traefikservice_asgi.config.models.CookieOptions`,
  read (a configured name sanitised) and named (Traefik's default name) by the config layer;
* the value for a target is ``sha256(<target name>)[:16]`` (v3.3.4+); the legacy values of
  earlier releases (the plain name, FNV-1 64 hex, FNV-1 of that) still pin the target, and
  the response then carries a ``Set-Cookie`` rewriting it to the current value;
* the request cookie is found as Go's ``Request.Cookie`` finds it: the first well-formed
  cookie of that name in any ``Cookie`` header;
* ``Set-Cookie`` is serialised as Go's ``http.Cookie.String`` does, attributes in the
  order ``Path; Domain; Max-Age; HttpOnly; Secure; SameSite``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import string
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.types import Message, Scope, Send

from ..config.models import CookieOptions

__all__ = [
    "StickyCookie",
    "cookie_value",
    "fnv1_64_hex",
    "request_cookie",
    "set_cookie_header",
    "with_set_cookie",
]

T = TypeVar("T")


def cookie_value(target: str) -> str:
    """The cookie value pinning ``target`` (a child service name or a server URL)."""
    return hashlib.sha256(target.encode()).hexdigest()[:16]


def fnv1_64_hex(text: str) -> str:
    """FNV-1 (not 1a) 64-bit, lowercase hex without zero padding: Traefik 2.11-3.3.3's
    cookie value, still accepted (and rewritten) by 3.7."""
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= byte
    return format(h, "x")


def _valid_value_byte(b: int) -> bool:
    return 0x20 <= b < 0x7F and b not in (0x22, 0x3B, 0x5C)  # '"', ';', '\\'


def request_cookie(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of the first well-formed cookie called ``name``, as Go's
    ``Request.Cookie`` returns it; malformed pairs are skipped, not fatal."""
    for key, line in headers:
        if key.lower() != b"cookie":
            continue
        for part in line.split(b";"):
            part = part.strip(b" \t")
            if not part:
                continue
            cname, _, value = part.partition(b"=")
            if cname != name:
                continue
            if len(value) > 1 and value[:1] == b'"' and value[-1:] == b'"':
                value = value[1:-1]
            if all(_valid_value_byte(b) for b in value):
                return value.decode("ascii")
    return None


def _sanitize_path(path: str) -> str:
    # Go's sanitizeCookiePath drops every byte outside 0x20-0x7E and ';' (a non-ASCII
    # character is all such bytes).
    return "".join(c for c in path if 0x20 <= ord(c) < 0x7F and c != ";")


def _valid_cookie_domain(domain: str) -> bool:
    """Go's ``validCookieDomain``: a cookie domain name, or an IPv4 address as Go's
    ``net.ParseIP`` reads one (no leading zeros)."""
    if _is_cookie_domain_name(domain):
        return True
    if ":" in domain:
        return False
    try:
        ipaddress.IPv4Address(domain)
    except ValueError:
        return False
    return True


def _is_cookie_domain_name(domain: str) -> bool:
    # Go's isCookieDomainName, on the domain's bytes: ASCII letters, digits, '-', '.'.
    if not domain or len(domain.encode()) > 255:
        return False
    if domain[0] == ".":
        domain = domain[1:]
    last = "."
    ok = False
    part_len = 0
    for c in domain:
        if c in _ASCII_LETTERS:
            ok = True
            part_len += 1
        elif c in _ASCII_DIGITS:
            part_len += 1
        elif c == "-":
            if last == ".":
                return False
            part_len += 1
        elif c == ".":
            if last in ".-" or part_len > 63 or part_len == 0:
                return False
            part_len = 0
        else:
            return False
        last = c
    return last != "-" and part_len <= 63 and ok


_ASCII_LETTERS = frozenset(string.ascii_letters)
_ASCII_DIGITS = frozenset(string.digits)
_SAME_SITE = {"none": "None", "lax": "Lax", "strict": "Strict"}


def set_cookie_header(options: CookieOptions, value: str) -> bytes:
    """The ``Set-Cookie`` header value pinning ``value``, byte for byte as Go's
    ``http.Cookie.String`` serialises ``options``: an empty path writes no ``Path``, an
    invalid domain is dropped (a leading dot stripped from a valid one)."""
    parts = [f"{options.name}={value}"]
    if options.path:
        parts.append(f"Path={_sanitize_path(options.path)}")
    if options.domain and _valid_cookie_domain(options.domain):
        domain = options.domain[1:] if options.domain.startswith(".") else options.domain
        parts.append(f"Domain={domain}")
    if options.max_age > 0:
        parts.append(f"Max-Age={options.max_age}")
    elif options.max_age < 0:
        parts.append("Max-Age=0")
    if options.http_only:
        parts.append("HttpOnly")
    if options.secure:
        parts.append("Secure")
    same_site = _SAME_SITE.get((options.same_site or "").lower())
    if same_site:
        parts.append(f"SameSite={same_site}")
    return "; ".join(parts).encode("latin-1")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    target: T
    header: bytes  # the Set-Cookie value pinning this target


class StickyCookie(Generic[T]):
    """Maps cookie values to targets and targets to their ``Set-Cookie`` header.

    Built once per balancer; all lookups are dict hits, so a sticky request costs one
    header scan and two dictionary reads. ``hits`` counts the requests a cookie pinned
    to an UP target, ``rewrites`` those of them whose legacy value was rewritten
    (metrics, own.py).
    """

    __slots__ = (
        "_by_value",
        "_compat",
        "_header",
        "hits",
        "name",
        "name_bytes",
        "options",
        "rewrites",
    )

    def __init__(self, options: CookieOptions, targets: Mapping[str, T]) -> None:
        self.options = options
        self.name = options.name
        self.name_bytes = options.name.encode("latin-1")
        # cookie value -> (the target's key, the target)
        self._by_value: dict[str, tuple[str, T]] = {}
        self._compat: dict[str, tuple[str, T]] = {}
        self._header: dict[str, bytes] = {}
        self.hits = 0
        self.rewrites = 0
        for key, target in targets.items():
            value = cookie_value(key)
            self._by_value[value] = (key, target)
            self._header[key] = set_cookie_header(options, value)
            fnv = fnv1_64_hex(key)
            # Earlier releases' values: plain name, FNV-1, and the "double hash" FNV-1 of
            # that hex (Traefik 3.0-3.3.3 for servers); setdefault keeps the first owner.
            for legacy in (key, fnv, fnv1_64_hex(fnv)):
                self._compat.setdefault(legacy, (key, target))

    def pinned(self, scope: Scope, up: AbstractSet[str], send: Send) -> tuple[T | None, Send]:
        """The target the request's cookie pins, if it is UP, and the ``send`` to answer
        with: a legacy value is rewritten with a ``Set-Cookie``. ``(None, send)`` when
        the cookie pins nothing UP, and the balancer picks as usual (every strategy's
        ``StickyHandler`` step, in one place)."""
        value = request_cookie(scope["headers"], self.name_bytes)
        if value is None:
            return None, send
        found = self._by_value.get(value)
        rewrite = found is None
        if found is None:
            found = self._compat.get(value)
            if found is None:
                return None, send
        key, target = found
        if key not in up:
            return None, send
        self.hits += 1
        if rewrite:
            self.rewrites += 1
            send = with_set_cookie(send, self._header[key])
        return target, send

    def header_for(self, key: str) -> bytes:
        """The precomputed ``Set-Cookie`` value for the target registered as ``key``."""
        return self._header[key]


# The messages that start a response, and so carry its headers.
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})


def with_set_cookie(send: Send, header: bytes) -> Send:
    """Wrap ``send`` so the response starts with ``Set-Cookie: header``.

    Traefik sets the header before the child runs, so it precedes the backend's own
    cookies and those of deeper sticky levels, and it is present on a 502 or 503 too.
    A WebSocket's handshake answer gets it as well: the ``101`` (``websocket.accept``)
    or a refusal (``websocket.http.response.start``).
    """

    async def sender(message: Message) -> None:
        if message["type"] in _STARTS:
            message = dict(message)
            message["headers"] = [(b"set-cookie", header), *message.get("headers", ())]
        await send(message)

    return sender
