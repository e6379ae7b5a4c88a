"""The request URL as Go's ``net/url`` holds it, for the middlewares that rewrite it.

Traefik's path middlewares change ``req.URL.Path`` (decoded) and ``req.URL.RawPath``
(the escaped form, kept only when it differs from Go's own escaping of ``Path``), then set
``req.RequestURI = req.URL.RequestURI()``, which the proxy sends. Here the request carries
that target in its :class:`~..entrypoint.forwarding.Forward` (``target``: escaped path and
query); :meth:`RequestURL.of` splits it as Go's ``url.ParseRequestURI`` does and
:meth:`RequestURL.request_uri` joins it back as ``URL.RequestURI`` does. Everything is
bytes: Go strings are bytes, and a path need not be UTF-8.
"""

from __future__ import annotations

from ..entrypoint.forwarding import value_type
from ..rules._request import _VALID_IN_PATH_BYTES, _escape_path, _unescape, only_bytes_of

__all__ = [
    "RequestURL",
    "clean_segments",
    "ensure_leading_slash",
    "go_clean",
    "path_unescape",
    "unescape_error",
]


def ensure_leading_slash(path: bytes) -> bytes:
    """Traefik's ``ensureLeadingSlash``: ``""`` stays empty."""
    if not path or path[:1] == b"/":
        return path
    return b"/" + path


def path_unescape(raw: bytes) -> bytes | None:
    """Go's ``url.PathUnescape``; None on a malformed escape (``invalid URL escape``)."""
    return _unescape(raw, plus_is_space=False)


def unescape_error(raw: bytes) -> str | None:
    """Go's ``url.EscapeError`` text for ``raw``, or None when it unescapes."""
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"%":
            bad = raw[i : i + 3]
            if len(bad) < 3 or path_unescape(bad) is None:
                quoted = bad.decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')
                return f'invalid URL escape "{quoted}"'
            i += 3
        else:
            i += 1
    return None


def go_clean(path: bytes) -> bytes:
    """Go's ``path.Clean``."""
    if not path:
        return b"."
    rooted = path[:1] == b"/"
    if rooted and b"//" not in path and b"/." not in path:
        # No empty, "." or ".." segment: only a trailing slash to drop (the usual case).
        return path[:-1] if len(path) > 1 and path[-1:] == b"/" else path
    return clean_segments(path, rooted)


def clean_segments(path: bytes, rooted: bool) -> bytes:
    """Go's ``path.Clean`` of a non-empty ``path``, segment by segment."""
    parts: list[bytes] = []
    for segment in path.split(b"/"):
        if segment in (b"", b"."):
            continue
        if segment == b"..":
            if parts and parts[-1] != b"..":
                parts.pop()
            elif not rooted:
                parts.append(b"..")
        else:
            parts.append(segment)
    out = (b"/" if rooted else b"") + b"/".join(parts)
    return out or (b"/" if rooted else b".")


@value_type
class RequestURL:
    """Go's ``URL.Path``, ``URL.RawPath`` (``b""`` when not needed) and ``RawQuery``
    (None: no ``?``)."""

    path: bytes
    raw_path: bytes
    query: bytes | None

    @classmethod
    def of(cls, target: bytes) -> RequestURL:
        raw, sep, query = target.partition(b"?")
        return cls.from_escaped(raw, query if sep else None)

    @classmethod
    def from_escaped(cls, raw: bytes, query: bytes | None) -> RequestURL:
        """Go's ``URL.setPath``: the decoded path, and the raw one only if it differs
        from Go's escaping of it."""
        path = _unescape(raw, plus_is_space=False)
        if path is None:  # never from the entry point, which refuses it first
            return cls(raw, b"", query)
        return cls(path, b"" if _escape_path(path) == raw else raw, query)

    def escaped_path(self) -> bytes:
        """Go's ``URL.EscapedPath``."""
        raw = self.raw_path
        if (
            raw
            and only_bytes_of(raw, _VALID_IN_PATH_BYTES)
            and _unescape(raw, plus_is_space=False) == self.path
        ):
            return raw
        if self.path == b"*":
            return b"*"
        return _escape_path(self.path)

    def request_uri(self) -> bytes:
        """Go's ``URL.RequestURI``: the escaped path (``/`` when empty) and the query."""
        uri = self.escaped_path() or b"/"
        return uri if self.query is None else uri + b"?" + self.query

    def with_path(self, path: bytes, raw_path: bytes) -> RequestURL:
        return RequestURL(path, raw_path, self.query)

    def joined(self) -> RequestURL:
        """Go's ``URL.JoinPath()`` with no element: the escaped path cleaned (a trailing
        slash kept), set back as ``setPath`` does."""
        escaped = self.escaped_path()
        rooted = escaped[:1] == b"/"
        cleaned = go_clean(escaped) if rooted else go_clean(b"/" + escaped)[1:]
        if escaped.endswith(b"/") and not cleaned.endswith(b"/"):
            cleaned += b"/"
        return RequestURL.from_escaped(cleaned, self.query)
