"""``Set-Cookie`` lines as Go's ``net/http`` reads and writes them: ``ParseSetCookie``
(what ``Response.Cookies()`` keeps) and ``Cookie.String()``.

``forwardAuth`` with ``addAuthCookiesToResponse`` rewrites the backend's cookies through
these two (Traefik's ``buildModifier``), so a backend's ``Set-Cookie`` reaches the client
as Go re-serialises it: attributes in Go's order and spelling, ``Expires`` in
``TimeFormat``, a value with a space or a comma quoted, unknown attributes and lines Go
cannot parse dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["GoCookie", "parse_set_cookie"]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_EXPIRES = (
    re.compile(
        rb"[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) [A-Za-z]{3,4}"
    ),
    re.compile(
        rb"[A-Za-z]{3}, (\d{2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) [A-Za-z]{3,4}"
    ),
)
_MONTHS = [
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
]
_SAME_SITE = {b"lax": b"Lax", b"strict": b"Strict", b"none": b"None"}


def _valid_value_byte(b: int) -> bool:
    return 0x20 <= b < 0x7F and b not in b'";\\'


def _cookie_value(raw: bytes, allow_quote: bool) -> tuple[bytes, bool] | None:
    """Go's ``parseCookieValue``: (value, quoted), None when a byte is not allowed."""
    quoted = False
    if allow_quote and len(raw) > 1 and raw[:1] == b'"' and raw[-1:] == b'"':
        raw, quoted = raw[1:-1], True
    if not all(_valid_value_byte(b) for b in raw):
        return None
    return raw, quoted


def _expires(value: bytes) -> datetime | None:
    """Go's ``time.Parse`` of RFC 1123 (or the dashed Netscape form), read as UTC."""
    for pattern in _EXPIRES:
        m = pattern.fullmatch(value)
        if m is None or m.group(2) not in _MONTHS:
            continue
        day, year, hour, minute, second = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
        try:
            when = datetime(
                year, _MONTHS.index(m.group(2)) + 1, day, hour, minute, second, tzinfo=timezone.utc
            )
        except ValueError:
            return None
        return when
    return None


def _domain_ok(domain: bytes) -> bool:
    """Go's ``validCookieDomain``: a domain name (``isCookieDomainName``) or an IPv4."""
    if re.fullmatch(rb"\d{1,3}(\.\d{1,3}){3}", domain):
        return all(int(part) < 256 for part in domain.split(b"."))
    if not domain or len(domain) > 255:
        return False
    if domain[:1] == b".":
        domain = domain[1:]
    last, letter, part = ord("."), False, 0
    for c in domain:
        if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:  # no "_" (unlike package net)
            letter, part = True, part + 1
        elif 0x30 <= c <= 0x39:
            part += 1
        elif c == 0x2D:
            if last == 0x2E:
                return False
            part += 1
        elif c == 0x2E:
            if last in (0x2E, 0x2D) or part == 0 or part > 63:
                return False
            part = 0
        else:
            return False
        last = c
    return last != 0x2D and part <= 63 and letter


@dataclass
class GoCookie:
    """The fields of Go's ``http.Cookie`` that ``String()`` writes."""

    name: bytes
    value: bytes
    quoted: bool = False
    path: bytes = b""
    domain: bytes = b""
    expires: datetime | None = None
    max_age: int = 0
    http_only: bool = False
    secure: bool = False
    same_site: bytes = b""  # b"": SameSiteDefaultMode (not written)
    partitioned: bool = False

    def string(self) -> bytes:
        """Go's ``Cookie.String()``."""
        value = bytes(b for b in self.value if _valid_value_byte(b))
        if value and (self.quoted or b" " in value or b"," in value):
            value = b'"' + value + b'"'
        out = [self.name + b"=" + value]
        if self.path:
            out.append(b"Path=" + bytes(b for b in self.path if 0x20 <= b < 0x7F and b != 0x3B))
        if self.domain and _domain_ok(self.domain):
            out.append(b"Domain=" + self.domain.removeprefix(b"."))
        if self.expires is not None and self.expires.year >= 1601:
            out.append(b"Expires=" + self.expires.strftime("%a, %d %b %Y %H:%M:%S GMT").encode())
        if self.max_age > 0:
            out.append(b"Max-Age=" + str(self.max_age).encode())
        elif self.max_age < 0:
            out.append(b"Max-Age=0")
        if self.http_only:
            out.append(b"HttpOnly")
        if self.secure:
            out.append(b"Secure")
        if self.same_site:
            out.append(b"SameSite=" + self.same_site)
        if self.partitioned:
            out.append(b"Partitioned")
        return b"; ".join(out)


def parse_set_cookie(line: bytes) -> GoCookie | None:
    """Go's ``ParseSetCookie``; None where Go returns an error (the line is dropped)."""
    parts = line.strip(b" \t").split(b";")
    name, equals, raw_value = parts[0].strip(b" \t").partition(b"=")
    name = name.strip(b" \t")
    if not equals or _TOKEN.fullmatch(name) is None:
        return None
    parsed = _cookie_value(raw_value, True)
    if parsed is None:
        return None
    cookie = GoCookie(name, *parsed)
    for part in parts[1:]:
        part = part.strip(b" \t")
        if not part:
            continue
        attr, _, raw = part.partition(b"=")
        if not attr.isascii():
            continue
        lower = attr.lower()
        value = _cookie_value(raw, False)
        if value is None:
            continue  # Go keeps it in Unparsed, which String() does not write
        val = value[0]
        if lower == b"samesite":
            cookie.same_site = _SAME_SITE.get(val.lower(), b"") if val.isascii() else b""
        elif lower == b"secure":
            cookie.secure = True
        elif lower == b"httponly":
            cookie.http_only = True
        elif lower == b"domain":
            cookie.domain = val
        elif lower == b"max-age":
            if re.fullmatch(rb"[+-]?\d+", val) and not (val[:1] == b"0" and int(val) != 0):
                cookie.max_age = -1 if int(val) <= 0 else int(val)
        elif lower == b"expires":
            cookie.expires = _expires(val)
        elif lower == b"path":
            cookie.path = val
        elif lower == b"partitioned":
            cookie.partitioned = True
    return cookie
