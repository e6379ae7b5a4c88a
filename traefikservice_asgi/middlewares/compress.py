"""``compress`` (Traefik's ``pkg/middlewares/compress``): the answer compressed with the
encoding the client prefers, gzip through klauspost's ``gzhttp`` (:mod:`._gzhttp`),
brotli and zstd through Traefik's own handler (:mod:`._compression_handler`).

Which encoding, as Traefik 3.7's ``getCompressionEncoding``: a ``HEAD``, or a request
whose ``Content-Type`` is excluded (``application/grpc`` always), passes untouched. No
``Accept-Encoding``: ``defaultEncoding``, or nothing. An empty one: nothing. Otherwise
every listed coding of ``encodings`` (and ``*``, ``identity``; names compared as
written, spaces removed) with its ``q`` (1 by default; 0 or unparsable: not acceptable)
is sorted by weight, then by the order of ``encodings`` (``*`` first, ``identity``
last); the first wins, ``*`` meaning ``defaultEncoding`` or the first of
``encodings``. None acceptable or ``identity``: nothing. Once an encoding is chosen the
answer gets ``Vary: Accept-Encoding`` (before the service's own headers), compressed
or not.

The answer is streamed: at most ``minResponseBodyBytes`` (gzip: at least 512) bytes are
held before the decision, then each piece is compressed as it arrives. Go's proxy
flushes every write of an answer of unknown length; each such piece is flushed here too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config._mime import MediaTypeError, parse_media_type
from ..config.middlewares import Compress as CompressConfig
from ..entrypoint.context import forward_of
from ._compression_handler import CompressionResponseWriter, ContentTypes, matches
from ._gzhttp import GzipResponseWriter, accepts_gzip
from ._writer import GoResponseWriter, flushes_each_write

__all__ = ["Compress", "choose_encoding"]

_VARY = (b"vary", b"Accept-Encoding")


def _go_float(text: str) -> float:
    """``strconv.ParseFloat``'s value, 0 where it fails (Traefik ignores the error)."""
    if "_" in text:
        return 0.0
    try:
        if text.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(text)
        return float(text)
    except ValueError:
        return 0.0


def _go_compare(a: float, b: float) -> int:
    """Go's ``cmp.Compare`` for floats: NaN is below everything and equal to NaN."""
    if a != a or b != b:  # NaN
        return (b != b) - (a != a)
    return (a > b) - (a < b)


def choose_encoding(
    values: list[str], encodings: tuple[str, ...], default_encoding: str
) -> str | None:
    """The encoding Traefik picks for these ``Accept-Encoding`` lines (None: none)."""
    if values == [""]:
        return None
    priority = {"*": -1, "identity": len(encodings)}
    priority.update((encoding, i) for i, encoding in enumerate(encodings))
    acceptable: list[tuple[str, float]] = []
    for line in values:
        for item in line.replace(" ", "").split(","):
            coding, _, rest = item.partition(";")
            if coding not in priority:
                continue
            weight = 1.0
            if rest.startswith("q="):
                weight = _go_float(rest[2:])
                if weight == 0:
                    continue
            acceptable.append((coding, weight))
    if not acceptable:
        return None

    def order(a: tuple[str, float], b: tuple[str, float]) -> int:
        if a[1] == b[1]:
            return priority[a[0]] - priority[b[0]]
        return _go_compare(b[1], a[1])

    best = min(acceptable, key=functools.cmp_to_key(order))[0]
    if best == "*":
        return default_encoding or encodings[0]
    return None if best == "identity" else best


def _parsed(types: tuple[str, ...]) -> ContentTypes:
    return tuple(parse_media_type(text) for text in types)


def _media_type(content_type: bytes) -> str:
    try:
        return parse_media_type(content_type.decode("latin-1"))[0]
    except MediaTypeError as exc:
        return exc.media_type


class Compress:
    def __init__(self, app: ASGIApp, config: CompressConfig) -> None:
        self.app = app
        self.encodings = config.encodings
        self.default_encoding = config.default_encoding
        self.min_size = config.min_response_body_bytes
        excluded = (("application/grpc", {}), *_parsed(config.excluded_content_types))
        self.request_excluded = frozenset(media_type for media_type, _ in excluded)
        self.included = _parsed(config.included_content_types)
        self.excluded: ContentTypes = () if self.included else excluded
        self.gzip_filter = self._gzip_filter()

    def _gzip_filter(self) -> Callable[[str], bool]:
        """gzhttp's ``ContentTypes`` (included) or ``ExceptContentTypes`` filter."""
        listed, keep = (self.included, True) if self.included else (self.excluded, False)

        def accepts(content_type: str) -> bool:
            try:
                media_type, params = parse_media_type(content_type)
            except MediaTypeError:
                return not keep
            return matches(listed, media_type, params) == keep

        return accepts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        encoding = None
        if forward.method != "HEAD":
            content_type = b""
            accept: list[str] = []
            for name, value in forward.headers:
                if name == b"content-type" and not content_type:
                    content_type = value
                elif name == b"accept-encoding":
                    accept.append(value.decode("latin-1"))
            if forward.gzip_added:
                accept.pop()  # the gateway's, for the backend (Go's transport adds it)
            if _media_type(content_type) not in self.request_excluded:
                if accept:
                    encoding = choose_encoding(accept, self.encodings, self.default_encoding)
                else:
                    encoding = self.default_encoding or None
        if encoding is None:
            await self.app(scope, receive, send)
            return
        if encoding == "gzip" and not (accept and accepts_gzip(accept[0])):
            await self.app(scope, receive, _vary_only(send))
            return
        await self.app(scope, receive, _Compressing(send, self, encoding).send)


def _vary_only(send: Send) -> Send:
    """gzhttp's ``NoGzipResponseWriter``: ``Vary`` added, ``No-Gzip-Compression`` dropped."""

    async def vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [_VARY] + [h for h in message["headers"] if h[0] != b"no-gzip-compression"]
            message = {**message, "headers": headers}
        await send(message)

    return vary


class _Compressing:
    """The ``send`` of one compressed answer: ASGI messages as Go writer calls."""

    __slots__ = ("config", "encoding", "flushing", "outer", "writer")

    def __init__(self, outer: Send, config: Compress, encoding: str) -> None:
        self.outer = outer
        self.config = config
        self.encoding = encoding
        self.flushing = False
        self.writer: GzipResponseWriter | CompressionResponseWriter | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [_VARY, *message.get("headers", ())]
            rw = GoResponseWriter(self.outer, message, headers)
            config = self.config
            if self.encoding == "gzip":
                self.writer = GzipResponseWriter(rw, config.min_size, config.gzip_filter)
            else:
                self.writer = CompressionResponseWriter(
                    rw, self.encoding, config.min_size, config.excluded, config.included
                )
            self.flushing = flushes_each_write(headers)
            self.writer.write_header(message["status"])
            return
        writer = self.writer
        if message["type"] != "http.response.body" or writer is None:
            await self.outer(message)
            return
        body = message.get("body", b"")
        if body:
            await writer.write(body)
            if self.flushing:
                await writer.flush()
        if not message.get("more_body", False):
            await writer.close()
