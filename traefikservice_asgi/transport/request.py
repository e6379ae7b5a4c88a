"""One upstream request, and its HTTP/1.1 serialisation.

:class:`UpstreamRequest` is what the leaf (:mod:`traefikservice_asgi.proxy.http`) hands
to a transport: built once per request, on plain values (no httpx Request/URL/Headers).
The serialisation keeps Go's ``http.Transport`` rules where a backend can see them: the
request goes out exactly as given, no header is added except ``Host`` when the request
has none, and the body framing is ``Content-Length`` *or* chunked, never both
(``net/http/transfer.go``); a header name, method or value that would let a request
smuggle another is refused with ``httpx.LocalProtocolError``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Sequence
from itertools import islice
from operator import itemgetter

import httpx

__all__ = ["Origin", "RequestHead", "UpstreamRequest", "payload", "request_head"]

Origin = tuple[bytes, bytes, int]
"""``(scheme, host, port)`` of a server."""

RequestHead = tuple[bytes, "int | None", bool, bool, bool]
"""What :func:`request_head` returns: ``(head, content_length, chunked, framed, close)``."""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header names already checked against the token grammar, each with whether it is one
# request_head reads (_FRAMING, any case); names repeat on every request, so validating
# and classifying each distinct name once keeps both off the hot path: one lookup.
_KNOWN_NAMES: dict[bytes, bool] = {}
_KNOWN_NAMES_MAX = 4096
_FRAMING = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection"))
# The checked names that are not framing ones: a request whose names after its leading
# ``host`` are all here (nearly every request: the proxy puts the Host first and adds
# framing headers only for a body) is serialised by C calls alone (_plain_head).
_PLAIN_NAMES: set[bytes] = set()
_KNOWN_METHODS: set[bytes] = set()  # methods already checked against the token grammar
_first = itemgetter(0)
_COLON = b": "


class UpstreamRequest:
    """One request to one server.

    ``origin`` is ``(scheme, host, port)``; ``authority`` the ``Host`` (sent when
    ``headers`` carry none; HTTP/2's ``:authority``); ``target`` the raw path and query;
    ``body`` the request body stream, sent only when ``has_body`` for HTTP/2 (HTTP/1.1
    frames it as its headers say, and skips an unframed stream known empty: ``has_body``
    False); ``timeouts`` httpx's timeout extension
    (``connect``/``read``/``write``); ``server_name`` the TLS SNI name (None: the host);
    ``copy`` marks a mirror copy (its own idle pool); ``header_timeout`` is Traefik's
    ``responseHeaderTimeout``, applied by the transport to detached copies only.
    """

    __slots__ = (
        "authority",
        "body",
        "copy",
        "has_body",
        "header_timeout",
        "headers",
        "method",
        "origin",
        "server_name",
        "target",
        "timeouts",
    )

    def __init__(
        self,
        method: bytes,
        origin: Origin,
        authority: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: AsyncIterable[bytes],
        timeouts: dict[str, float | None],
        has_body: bool = True,
        server_name: object = None,
        copy: bool = False,
        header_timeout: float | None = None,
    ) -> None:
        self.method = method
        self.origin = origin
        self.authority = authority
        self.target = target
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
        self.has_body = has_body
        self.server_name = server_name
        self.copy = copy
        self.header_timeout = header_timeout


def _check_name(name: bytes) -> bool:
    """Refuse a name that is not a token; whether ``name`` is one of :data:`_FRAMING`."""
    if _TOKEN.fullmatch(name) is None:
        raise httpx.LocalProtocolError(f"invalid header name {name!r}")
    framing = name.lower() in _FRAMING
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_MAX:
        _KNOWN_NAMES[name] = framing
        if not framing:
            _PLAIN_NAMES.add(name)
    return framing


def request_head(request: UpstreamRequest) -> RequestHead:
    """Serialise the request line and headers.

    Returns ``(head, content_length, chunked, framed, close)``: the body framing the
    headers announce (``framed`` is False when they announce none) and whether the
    request asked for ``Connection: close``. A request carrying both framing headers
    keeps only ``Transfer-Encoding`` (RFC 9112 §6.3: it overrides ``Content-Length``);
    two different ``Content-Length`` values are refused.
    """
    method = request.method
    if method not in _KNOWN_METHODS:
        if _TOKEN.fullmatch(method) is None:
            raise httpx.LocalProtocolError(f"invalid method {method!r}")
        if len(_KNOWN_METHODS) < _KNOWN_NAMES_MAX:
            _KNOWN_METHODS.add(method)
    headers = request.headers
    if (
        headers
        and headers[0][0] == b"host"
        and _PLAIN_NAMES.issuperset(map(_first, islice(headers, 1, None)))
    ):
        return _plain_head(method, request.target, headers), None, False, False, False
    content_length: int | None = None
    chunked = False
    close = False
    has_host = False
    lines = 0
    parts: list[bytes] = [method, b" ", request.target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        framing = _KNOWN_NAMES.get(name)
        if framing is None:  # (a name not seen yet: checked once per process)
            framing = _check_name(name)
        if framing:
            lower = name.lower()
            if lower == b"host":
                has_host = True
            elif lower == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise httpx.LocalProtocolError(f"invalid Content-Length {value!r}") from None
                if length < 0 or (content_length is not None and length != content_length):
                    raise httpx.LocalProtocolError(f"invalid Content-Length {value!r}")
                if content_length is not None:
                    continue  # the same value twice: sent once
                content_length = length
            elif lower == b"transfer-encoding":
                if value.strip().lower() != b"chunked":
                    raise httpx.LocalProtocolError(f"unsupported Transfer-Encoding {value!r}")
                if chunked:
                    continue
                chunked = True
            elif lower == b"connection" and value.lower().find(b"close") >= 0:
                close = True
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    if not has_host:
        parts[4:4] = (b"Host: ", request.authority, b"\r\n")
        lines += 1
    parts.append(b"\r\n")
    head = b"".join(parts)
    if chunked and content_length is not None:
        content_length = None
        head = _without_content_length(head)
        lines -= 1
    _check_lines(head, lines)
    framed = chunked or content_length is not None
    return head, content_length, chunked, framed, close


def _plain_head(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The head of a request with a leading ``host`` and no other framing header, every
    name already checked: joined in C (``b": ".join`` of each pair), no bytecode per
    header (bench/README.md, session 8)."""
    head = b"".join(
        (
            method,
            b" ",
            target,
            b" HTTP/1.1\r\n",
            b"\r\n".join(map(_COLON.join, headers)),
            b"\r\n\r\n",
        )
    )
    expected = len(headers) + 2  # (_check_lines, inline)
    if head.count(b"\n") != expected or head.count(b"\r") != expected or 0 in head:  # NUL
        raise httpx.LocalProtocolError("CR, LF or NUL in the request target or a header value")
    return head


def _check_lines(head: bytes, lines: int) -> None:
    """One C-speed scan instead of one per value: every CR and LF must be ours (request
    line, ``lines`` header lines, final blank line), or a value smuggles a header."""
    expected = lines + 2
    if head.count(b"\n") != expected or head.count(b"\r") != expected or 0 in head:  # NUL
        raise httpx.LocalProtocolError("CR, LF or NUL in the request target or a header value")


def payload(serialised: RequestHead, body: bytes) -> tuple[bytes, ...]:
    """A whole request, head and body, framed as its headers say (a body under headers
    that announce none goes chunked, as the HTTP/1.1 connection sends it)."""
    head, content_length, chunked, framed, _close = serialised
    if chunked or (body and not framed):
        if not framed:
            head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        if not body:
            return (head, b"0\r\n\r\n")
        return (head, b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n")
    if content_length is not None and content_length != len(body):
        raise httpx.LocalProtocolError(
            f"request body of {len(body)} bytes under Content-Length {content_length}"
        )
    return (head, body) if body else (head,)


def _without_content_length(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    kept = [ln for ln in lines if not ln.lower().startswith(b"content-length:")]
    return b"\r\n".join(kept)
