"""The three content codings of ``compress``, each a streaming encoder with Go's writer
interface: ``write`` (compressed bytes so far, maybe none), ``flush`` (everything
written so far, decodable), ``close`` (the end of the stream).

gzip is the standard library's zlib (DEFLATE with the gzip wrapper), brotli Google's
``brotli`` bindings and zstd ``zstandard`` (python-zstandard, the zstd C library): the
reference implementations of each format, well kept, streaming, bounded memory. Levels
are Traefik's writers' defaults: gzip 6 (klauspost's default level), brotli quality 6
(andybalholm/brotli's ``NewWriter``), zstd 3 (klauspost's ``SpeedDefault``). The bytes
differ from Go's encoders (another implementation); what a client decodes is the same.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

__all__ = ["Encoder", "new_encoder"]


class Encoder(Protocol):
    def write(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def close(self) -> bytes: ...


class _Gzip:
    __slots__ = ("_z",)

    def __init__(self) -> None:
        self._z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zlib.Z_SYNC_FLUSH)

    def close(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class _Brotli:
    __slots__ = ("_b",)

    def __init__(self) -> None:
        self._b = brotli.Compressor(quality=6)

    def write(self, data: bytes) -> bytes:
        return bytes(self._b.process(data))

    def flush(self) -> bytes:
        return bytes(self._b.flush())  # type: ignore[attr-defined]  # missing from the stubs

    def close(self) -> bytes:
        return bytes(self._b.finish())


class _Zstd:
    __slots__ = ("_z",)

    def __init__(self) -> None:
        self._z = zstandard.ZstdCompressor(level=3).compressobj()

    def write(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def close(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


_ENCODERS: dict[str, type[_Gzip | _Brotli | _Zstd]] = {
    "gzip": _Gzip,
    "br": _Brotli,
    "zstd": _Zstd,
}


def new_encoder(encoding: str) -> Encoder:
    """A fresh encoder of ``encoding`` (``gzip``, ``br`` or ``zstd``)."""
    return _ENCODERS[encoding]()
