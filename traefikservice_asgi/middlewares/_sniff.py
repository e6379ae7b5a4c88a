"""Go's ``http.DetectContentType`` (``net/http/sniff.go``, Go 1.26, the WHATWG MIME
sniffing table): the ``Content-Type`` Go's server gives an answer that has none, from
its first 512 bytes. Written out here because Traefik's answers depend on Go's exact
table and order (Python's ``mimetypes`` guesses from file names, and no library
reproduces Go's signatures byte for byte)."""

from __future__ import annotations

__all__ = ["detect_content_type"]

SNIFF_LEN = 512
_WS = b"\t\n\x0c\r "

_HTML = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
    b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P",
    b"<!--",
)  # fmt: skip

# (mask, pattern, skip leading whitespace, type): Go's exactSig is a mask of 0xFF.
_Sig = tuple[bytes | None, bytes, bool, str]


def _exact(pattern: bytes, ct: str) -> _Sig:
    return (None, pattern, False, ct)


def _masked(mask: bytes, pattern: bytes, ct: str, skip_ws: bool = False) -> _Sig:
    return (mask, pattern, skip_ws, ct)


_FF4_0_FF4 = b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff"

_BEFORE_MP4: tuple[_Sig, ...] = (
    _masked(b"\xff" * 5, b"<?xml", "text/xml; charset=utf-8", skip_ws=True),
    _exact(b"%PDF-", "application/pdf"),
    _exact(b"%!PS-Adobe-", "application/postscript"),
    _masked(b"\xff\xff\x00\x00", b"\xfe\xff\x00\x00", "text/plain; charset=utf-16be"),
    _masked(b"\xff\xff\x00\x00", b"\xff\xfe\x00\x00", "text/plain; charset=utf-16le"),
    _masked(b"\xff\xff\xff\x00", b"\xef\xbb\xbf\x00", "text/plain; charset=utf-8"),
    _exact(b"\x00\x00\x01\x00", "image/x-icon"),
    _exact(b"\x00\x00\x02\x00", "image/x-icon"),
    _exact(b"BM", "image/bmp"),
    _exact(b"GIF87a", "image/gif"),
    _exact(b"GIF89a", "image/gif"),
    _masked(_FF4_0_FF4 + b"\xff\xff", b"RIFF\x00\x00\x00\x00WEBPVP", "image/webp"),
    _exact(b"\x89PNG\r\n\x1a\n", "image/png"),
    _exact(b"\xff\xd8\xff", "image/jpeg"),
    _masked(_FF4_0_FF4, b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    _masked(b"\xff" * 3, b"ID3", "audio/mpeg"),
    _masked(b"\xff" * 5, b"OggS\x00", "application/ogg"),
    _masked(b"\xff" * 8, b"MThd\x00\x00\x00\x06", "audio/midi"),
    _masked(_FF4_0_FF4, b"RIFF\x00\x00\x00\x00AVI ", "video/avi"),
    _masked(_FF4_0_FF4, b"RIFF\x00\x00\x00\x00WAVE", "audio/wave"),
)
_AFTER_MP4: tuple[_Sig, ...] = (
    _exact(b"\x1a\x45\xdf\xa3", "video/webm"),
    _masked(b"\x00" * 34 + b"\xff\xff", b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    _exact(b"\x00\x01\x00\x00", "font/ttf"),
    _exact(b"OTTO", "font/otf"),
    _exact(b"ttcf", "font/collection"),
    _exact(b"wOFF", "font/woff"),
    _exact(b"wOF2", "font/woff2"),
    _exact(b"\x1f\x8b\x08", "application/x-gzip"),
    _exact(b"PK\x03\x04", "application/zip"),
    _exact(b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    _exact(b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    _exact(b"\x00asm", "application/wasm"),
)

_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def _html(data: bytes, tag: bytes) -> bool:
    if len(data) < len(tag) + 1:
        return False
    for i, b in enumerate(tag):
        db = data[i]
        if 0x41 <= b <= 0x5A:
            db &= 0xDF
        if b != db:
            return False
    return data[len(tag)] in b" >"


def _matches(sig: _Sig, data: bytes, rest: bytes) -> bool:
    mask, pattern, skip_ws, _ = sig
    if mask is None:
        return data.startswith(pattern)
    subject = rest if skip_ws else data
    if len(subject) < len(mask):
        return False
    return all(subject[i] & m == pattern[i] for i, m in enumerate(mask))


def _mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if box % 4 != 0 or len(data) < box or data[4:8] != b"ftyp":
        return False
    return any(data[st : st + 3] == b"mp4" for st in range(8, box, 4) if st != 12)


def detect_content_type(data: bytes) -> str:
    """Go's ``http.DetectContentType(data)``."""
    data = data[:SNIFF_LEN]
    rest = data.lstrip(_WS)
    for tag in _HTML:
        if _html(rest, tag):
            return "text/html; charset=utf-8"
    for sig in _BEFORE_MP4:
        if _matches(sig, data, rest):
            return sig[3]
    if _mp4(data):
        return "video/mp4"
    for sig in _AFTER_MP4:
        if _matches(sig, data, rest):
            return sig[3]
    if not any(b in _BINARY for b in rest):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"
