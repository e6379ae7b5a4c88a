"""Go's ``mime.ParseMediaType``, for content types read from a Middleware (``compress``'s
``excludedContentTypes``) and from the requests and answers it sees.

Traefik refuses a content type Go cannot parse, and decides what to compress from the
media type and parameters Go finds; Python's ``email`` parser is lenient where Go is
strict (``text/html/x``, a parameter without a value), so the grammar is ported here.
Parameter continuations (RFC 2231, ``name*0=``) are kept under their raw names.
"""

from __future__ import annotations

__all__ = ["MediaTypeError", "parse_media_type"]

_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')


class MediaTypeError(ValueError):
    """Go's error text (``mime: expected slash after first token``), with the media type
    Go still returns for a bad parameter (``""`` when the type itself is bad)."""

    def __init__(self, message: str, media_type: str = "") -> None:
        super().__init__(message)
        self.media_type = media_type


def _is_token_char(c: str) -> bool:
    return " " < c < "\x7f" and c not in _TSPECIALS


def _consume_token(v: str) -> tuple[str, str]:
    i = 0
    while i < len(v) and _is_token_char(v[i]):
        i += 1
    return v[:i], v[i:]


def _consume_value(v: str) -> tuple[str, str]:
    if not v:
        return "", ""
    if v[0] != '"':
        return _consume_token(v)
    out: list[str] = []
    i = 1
    while i < len(v):
        c = v[i]
        if c == '"':
            return "".join(out), v[i + 1 :]
        if c == "\\" and i + 1 < len(v) and v[i + 1] in _TSPECIALS:
            out.append(v[i + 1])
            i += 2
            continue
        if c in "\r\n":
            return "", v
        out.append(c)
        i += 1
    return "", v  # no closing quote


def _consume_param(v: str) -> tuple[str, str, str]:
    rest = v.lstrip()
    if not rest.startswith(";"):
        return "", "", v
    param, rest = _consume_token(rest[1:].lstrip())
    if not param:
        return "", "", v
    rest = rest.lstrip()
    if not rest.startswith("="):
        return "", "", v
    rest = rest[1:].lstrip()
    value, after = _consume_value(rest)
    if not value and after == rest:
        return "", "", v
    return param.lower(), value, after


def _check_type(s: str) -> None:
    kind, rest = _consume_token(s)
    if not kind:
        raise MediaTypeError("mime: no media type")
    if not rest:
        return
    if not rest.startswith("/"):
        raise MediaTypeError("mime: expected slash after first token")
    subtype, rest = _consume_token(rest[1:])
    if not subtype:
        raise MediaTypeError("mime: expected token after slash")
    if rest:
        raise MediaTypeError("mime: unexpected content after media subtype")


def parse_media_type(v: str) -> tuple[str, dict[str, str]]:
    """``(media type lower-cased, parameters)`` as Go's ``mime.ParseMediaType``; raises
    :class:`MediaTypeError` where Go returns an error."""
    base = v.split(";", 1)[0]
    media_type = base.lower().strip()
    _check_type(media_type)
    params: dict[str, str] = {}
    v = v[len(base) :]
    while v:
        v = v.lstrip()
        if not v:
            break
        key, value, rest = _consume_param(v)
        if not key:
            if rest.strip() == ";":
                break  # a trailing semicolon
            raise MediaTypeError("mime: invalid media parameter", media_type)
        if key in params and params[key] != value:
            raise MediaTypeError("mime: duplicate parameter name")
        params[key] = value
        v = rest
    return media_type, params
