"""contentType (Go's DetectContentType on the first bytes written) and
encodedCharacters (400 for an escaped path holding a denied encoded character)."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import run, scope
from traefikservice_asgi.config.middlewares import ContentType as ContentTypeConfig
from traefikservice_asgi.config.middlewares import EncodedCharacters as EncodedConfig
from traefikservice_asgi.entrypoint.context import set_forward
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.middlewares._sniff import detect_content_type
from traefikservice_asgi.middlewares.contenttype import ContentType
from traefikservice_asgi.middlewares.encodedcharacters import EncodedCharacters


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "text/plain; charset=utf-8"),
        (b" \n<!DOCTYPE HTML>", "text/html; charset=utf-8"),
        (b"<html", "text/plain; charset=utf-8"),  # a tag needs the byte after it
        (b"<p>x", "text/html; charset=utf-8"),
        (b"<pre>", "text/plain; charset=utf-8"),  # <P must be followed by space or >
        (b"<!-- c -->", "text/html; charset=utf-8"),
        (b"\t<?xml version", "text/xml; charset=utf-8"),
        (b"%PDF-1.4", "application/pdf"),
        (b"\xef\xbb\xbfhi", "text/plain; charset=utf-8"),
        (b"\xfe\xff\x00h", "text/plain; charset=utf-16be"),
        (b"GIF89a", "image/gif"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "audio/wave"),
        (b"ID3\x03", "audio/mpeg"),
        (b".snd....", "text/plain; charset=utf-8"),  # Go dropped audio/basic
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp41isom", "video/mp4"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
        (b"wOF2....", "font/woff2"),
        (b"\x1f\x8b\x08\x00", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
        (b'{"a": 1}\n', "text/plain; charset=utf-8"),
        (b"ab\x01cd", "application/octet-stream"),
        (b"a" * 600 + b"\x01", "text/plain; charset=utf-8"),  # only 512 bytes are read
    ],
)
def test_detect_content_type_is_go_s(data: bytes, expected: str) -> None:
    assert detect_content_type(data) == expected


def answering(*messages: Message) -> object:
    async def app(s: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


def start(headers: list[tuple[bytes, bytes]] | None = None, status: int = 200) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_the_first_bytes_written_give_the_content_type_and_the_head_waits_for_them() -> None:
    app = answering(start(), body(b"", more=True), body(b"<html>", more=True), body(b"x"))
    messages = run(ContentType(app, ContentTypeConfig()), scope())  # type: ignore[arg-type]
    assert messages[0]["headers"] == [(b"content-type", b"text/html; charset=utf-8")]
    assert [m["body"] for m in messages[1:]] == [b"<html>", b"x"]


@pytest.mark.parametrize(
    "messages",
    [
        (start([(b"Content-Type", b"")]), body(b"<html>")),  # set, even empty: kept
        (start(), body(b"")),  # nothing written
        (start(status=204), body(b"")),
        (start([(b"transfer-encoding", b"chunked")]), body(b"<html>")),
    ],
)
def test_no_content_type_is_added_where_go_sniffs_nothing(messages: tuple[Message, ...]) -> None:
    sent = run(ContentType(answering(*messages), ContentTypeConfig()), scope())  # type: ignore[arg-type]
    assert sent == list(messages)


def test_auto_detect_false_does_nothing() -> None:
    messages = (start(), body(b"<html>"))
    sent = run(ContentType(answering(*messages), ContentTypeConfig(False)), scope())  # type: ignore[arg-type]
    assert sent == list(messages)


def path_scope(raw: bytes) -> Scope:
    s = scope(headers=[(b"host", b"a.test")], raw_path=raw, path=raw.decode())
    set_forward(s, prepare(s))
    return s


@pytest.mark.parametrize(
    ("raw", "config", "refused"),
    [
        (b"/a%2Fb", EncodedConfig(), True),
        (b"/a%2fb", EncodedConfig(), True),  # the entry point upper-cases it
        (b"/a%5Cb", EncodedConfig(), True),
        (b"/a%00b", EncodedConfig(), True),
        (b"/a%3Bb", EncodedConfig(), True),
        (b"/a%25b", EncodedConfig(), True),
        (b"/a%3Fb", EncodedConfig(), True),
        (b"/a%23b", EncodedConfig(), True),
        (b"/a%20b", EncodedConfig(), False),
        (b"/a%41b", EncodedConfig(), False),  # decoded by the entry point
        (b"/a%2Fb", EncodedConfig(allow_encoded_slash=True), False),
        (b"/a%2Fb%23", EncodedConfig(allow_encoded_slash=True), True),
    ],
)
def test_a_denied_encoded_character_is_400_with_an_empty_body(
    raw: bytes, config: EncodedConfig, refused: bool
) -> None:
    called: list[bool] = []

    async def app(s: Scope, receive: Receive, send: Send) -> None:
        called.append(True)
        await send(start())
        await send(body(b"ok"))

    messages = run(EncodedCharacters(app, config), path_scope(raw))
    assert (messages[0]["status"] == 400) is refused
    assert bool(called) is not refused
    if refused:
        assert messages == [
            start([(b"content-length", b"0")], 400),
            {"type": "http.response.body", "body": b""},
        ]


def test_a_percent_at_the_end_of_the_escaped_path_is_refused() -> None:
    middleware = EncodedCharacters(lambda *a: None, EncodedConfig())  # type: ignore[arg-type]
    assert middleware.refuses(b"/a%2")
    assert not middleware.refuses(b"/a%20")
