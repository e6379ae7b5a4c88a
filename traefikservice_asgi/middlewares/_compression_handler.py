"""Traefik's own ``CompressionHandler`` (``pkg/middlewares/compress/
compression_handler.go``), the brotli and zstd writer of ``compress``.

Unlike gzhttp it decides from the bytes written only (never ``Content-Length``), at the
first write: an answer with a ``Content-Encoding``, or whose ``Content-Type`` Go cannot
parse, is not included or is excluded, passes untouched; otherwise up to ``minSize``
bytes are held, and once they are reached the answer is compressed (``Content-Length``
removed). An answer that ends below ``minSize`` goes out as it was. A ``Flush`` starts
the compression whatever the size (a streamed answer is compressed).
"""

from __future__ import annotations

from ..config._mime import MediaTypeError, parse_media_type
from ._encoders import Encoder, new_encoder
from ._writer import GoResponseWriter

__all__ = ["CompressionResponseWriter", "ContentTypes", "matches"]

ContentTypes = tuple[tuple[str, dict[str, str]], ...]
"""Parsed content types: ``(media type, parameters)``."""


def matches(types: ContentTypes, media_type: str, params: dict[str, str]) -> bool:
    """``parsedContentType.equals`` for any of ``types``: the same media type, and the
    same parameters when the listed one has any."""
    return any(
        listed == media_type and (not wanted or wanted == params) for listed, wanted in types
    )


class CompressionResponseWriter:
    """The ``responseWriter`` of Traefik's handler, for one encoding (``br``, ``zstd``)."""

    __slots__ = (
        "buf",
        "disabled",
        "encoder",
        "encoding",
        "excluded",
        "included",
        "min_size",
        "rw",
        "seen_data",
        "status",
        "status_set",
    )

    def __init__(
        self,
        rw: GoResponseWriter,
        encoding: str,
        min_size: int,
        excluded: ContentTypes,
        included: ContentTypes,
    ) -> None:
        self.rw = rw
        self.encoding = encoding
        self.min_size = min_size
        self.excluded = excluded
        self.included = included
        self.buf = bytearray()
        self.status = 200
        self.status_set = False
        self.seen_data = False
        self.disabled = False
        self.encoder: Encoder | None = None  # set when the compression starts

    def write_header(self, status: int) -> None:
        if not self.status_set:
            self.status, self.status_set = status, True

    def _passes_untouched(self) -> bool:
        rw = self.rw
        if rw.get(b"content-encoding"):
            return True
        content_type = rw.get(b"content-type").decode("latin-1")
        if not content_type:
            return False
        try:
            media_type, params = parse_media_type(content_type)
        except MediaTypeError:
            return True
        if self.included and not matches(self.included, media_type, params):
            return True
        return matches(self.excluded, media_type, params)

    async def _start(self) -> Encoder:
        self.rw.delete(b"content-length")
        self.rw.set(b"content-encoding", self.encoding.encode())
        await self.rw.write_header(self.status)
        self.encoder = new_encoder(self.encoding)
        return self.encoder

    async def write(self, data: bytes) -> None:
        if data:
            self.seen_data = True
        if self.disabled:
            await self.rw.write(data)
            return
        if self.encoder is not None:
            await self.rw.write(self.encoder.write(data))
            return
        if self._passes_untouched():
            self.disabled = True
            await self.rw.write_header(self.status)
            await self.rw.write(data)
            return
        if len(self.buf) + len(data) < self.min_size:
            self.buf += data
            return
        encoder = await self._start()
        held, self.buf = bytes(self.buf), bytearray()
        await self.rw.write(encoder.write(held) + encoder.write(data))

    async def flush(self) -> None:
        if not self.seen_data or self.disabled:
            return
        encoder = self.encoder or await self._start()
        held, self.buf = bytes(self.buf), bytearray()
        await self.rw.write(encoder.write(held) + encoder.flush())

    async def close(self) -> None:
        await self.rw.write_header(self.status)
        if self.seen_data and not self.disabled:
            if self.encoder is None:
                await self.rw.write(bytes(self.buf))  # below minSize: as it was
            else:
                held, self.buf = bytes(self.buf), bytearray()
                await self.rw.write(self.encoder.write(held) + self.encoder.close())
        await self.rw.finish()
