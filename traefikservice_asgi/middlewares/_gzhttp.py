"""klauspost/compress ``gzhttp`` (v1.18.5), the gzip writer of Traefik's ``compress``:
``GzipResponseWriter`` and the encoding check of the handler ``NewWrapper`` returns.

Traefik chooses gzip; gzhttp then checks ``Accept-Encoding`` again (its first line only,
``gzip`` with a q-value above 0), so a gzip chosen for ``*`` or as ``defaultEncoding``
without the header compresses nothing. The writer buffers up to ``max(minSize, 512)``
bytes; it compresses when the answer has no ``Content-Encoding`` (nor ``Content-Range``
or ``No-Gzip-Compression``), its ``Content-Length`` or the bytes seen reach ``minSize``,
and its ``Content-Type`` passes the filter; then ``Content-Length`` and
``Accept-Ranges`` are removed. A ``Flush`` before the decision takes a missing length
for ``minSize`` (a streamed answer is compressed).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._encoders import Encoder, new_encoder
from ._writer import GoResponseWriter

__all__ = ["GzipResponseWriter", "accepts_gzip"]

NO_COMPRESSION = b"no-gzip-compression"
_INT = re.compile(rb"[+-]?[0-9]+")


def _atoi(value: bytes) -> int:
    """gzhttp's ``atoi``: the integer, 0 when it is not one."""
    return int(value) if _INT.fullmatch(value) else 0


def _q_value(part: str) -> tuple[str, float]:
    """gzhttp's ``parseCoding``: the coding lower-cased and its q-value (1, clamped)."""
    if ";" not in part:
        return part.strip().lower(), 1.0
    coding, q = "", 1.0
    for n, piece in enumerate(part.split(";")):
        piece = piece.strip()
        if n == 0:
            coding = piece.lower()
        elif piece.startswith("q="):
            try:
                q = min(max(float(piece[2:]), 0.0), 1.0)
            except ValueError:
                q = 0.0
    return coding, q


def accepts_gzip(accept_encoding: str) -> bool:
    """gzhttp's ``selectEncoding`` with zstd off: ``gzip`` listed with q > 0."""
    for part in accept_encoding.strip().split(","):
        if part:
            coding, q = _q_value(part)
            if coding == "gzip":
                return q > 0
    return False


def _body_allowed(status: int) -> bool:
    return not (100 <= status <= 199 or status in (204, 304))


class GzipResponseWriter:
    """gzhttp's writer: decides at the first ``minSize`` bytes (or at the end)."""

    __slots__ = ("_filter", "buf", "code", "encoder", "ignore", "min_size", "rw", "want")

    def __init__(
        self, rw: GoResponseWriter, min_size: int, content_filter: Callable[[str], bool]
    ) -> None:
        self.rw = rw
        self.min_size = min_size
        self.want = max(min_size, 512)
        self._filter = content_filter
        self.code = 0
        self.buf = bytearray()
        self.ignore = False
        self.encoder: Encoder | None = None

    def write_header(self, status: int) -> None:
        if self.code == 0:
            self.code = status

    def _may_compress(self) -> bool:
        rw = self.rw
        return not (
            rw.has(NO_COMPRESSION) or rw.get(b"content-encoding") or rw.get(b"content-range")
        )

    def _content_type(self) -> str:
        # Go sniffs a missing Content-Type here (http.DetectContentType); a missing one
        # is left missing, as the gateway leaves it on every answer.
        return self.rw.get(b"content-type").decode("latin-1")

    async def write(self, data: bytes) -> None:
        if self.encoder is not None:
            await self.rw.write(self.encoder.write(data))
            return
        if self.ignore:
            await self.rw.write(data)
            return
        take = max(0, min(len(data), self.want - len(self.buf)))
        self.buf += data[:take]
        remain = data[take:]
        if self._may_compress():
            cl = _atoi(self.rw.get(b"content-length"))
            ct = self._content_type()
            if cl == 0 or (cl >= self.min_size and (not ct or self._filter(ct))):
                if len(self.buf) < self.min_size and cl == 0:
                    return
                if (cl >= self.min_size or len(self.buf) >= self.min_size) and self._filter(ct):
                    await self._start_compression()
                    if remain and self.encoder is not None:
                        await self.rw.write(self.encoder.write(remain))
                    return
        await self._start_plain()
        await self.rw.write(remain)

    async def _start_compression(self) -> None:
        rw = self.rw
        rw.set(b"content-encoding", b"gzip")
        rw.delete(b"content-length")
        rw.delete(b"accept-ranges")
        if self.code:
            await rw.write_header(self.code)
            self.code = 0
        if self.buf:
            self.encoder = new_encoder("gzip")
            await rw.write(self.encoder.write(bytes(self.buf)))
            self.buf.clear()

    async def _start_plain(self) -> None:
        self.rw.delete(NO_COMPRESSION)
        if self.code:
            await self.rw.write_header(self.code)
            self.code = 0
        self.ignore = True
        if self.buf:
            await self.rw.write(bytes(self.buf))
            self.buf.clear()

    async def flush(self) -> None:
        if self.encoder is None and not self.ignore:
            if not self.buf:
                return
            cl = _atoi(self.rw.get(b"content-length")) or self.min_size
            if self._may_compress() and cl >= self.min_size and self._filter(self._content_type()):
                await self._start_compression()
            else:
                await self._start_plain()
        if self.encoder is not None:
            await self.rw.write(self.encoder.flush())

    async def close(self) -> None:
        if not self.ignore and self.encoder is None:
            if (
                not self.buf
                or len(self.buf) < self.min_size
                or not self._may_compress()
                or not self._filter(self._content_type())
            ):
                await self._start_plain()
            else:
                await self._start_compression()
        if self.encoder is not None:
            await self.rw.write(self.encoder.close())
            self.encoder = None
        elif self.code:  # an answer that never wrote: its status still goes out
            await self.rw.write_header(self.code)
        await self.rw.finish()
