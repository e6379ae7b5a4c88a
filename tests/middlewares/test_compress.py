"""compress: Traefik 3.7's encoding choice, gzhttp's and Traefik's writers (when they
compress, what they hold, flushes of a streamed answer), and the load errors."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import pytest
import zstandard

from tests.support.asgi import run as run_app
from tests.support.asgi import scope
from tests.support.config import assert_unbuilt, middleware_errors
from traefikservice_asgi.config.middlewares import Compress as CompressConfig
from traefikservice_asgi.middlewares.compress import Compress, choose_encoding

ALL = ("gzip", "br", "zstd")


@pytest.mark.parametrize(
    ("accept", "encodings", "default", "chosen"),
    [
        (["gzip, br"], ALL, "", "gzip"),  # equal weights: the order of `encodings`
        (["br, gzip"], ALL, "", "gzip"),
        (["zstd, br"], ("zstd", "br"), "", "zstd"),
        (["gzip;q=0.5, br;q=0.8"], ALL, "", "br"),
        (["br;q=0, zstd"], ALL, "", "zstd"),  # q=0: not acceptable
        (["br;q=x"], ALL, "", None),  # an unparsable q is 0
        (["*"], ALL, "", "gzip"),  # the first encoding
        (["*"], ALL, "zstd", "zstd"),  # or defaultEncoding
        (["gzip;q=0.5, *"], ALL, "br", "br"),
        (["identity"], ALL, "", None),
        (["identity, gzip;q=0.5"], ALL, "", None),  # identity is last at equal weight only
        ([""], ALL, "br", None),  # an empty header: nothing
        (["deflate"], ALL, "", None),
        (["GZIP"], ALL, "", None),  # names compared as written
        (["g zip"], ALL, "", "gzip"),  # spaces removed anywhere
        (["deflate", "br"], ALL, "", "br"),  # every line
        (["br;level=5;q=0"], ALL, "", "br"),  # q= must be the first parameter
        (["gzip"], ("br",), "", None),  # not offered
    ],
)  # fmt: skip
def test_choose_encoding_follows_traefiks_weights_then_the_order_of_encodings(
    accept: list[str], encodings: tuple[str, ...], default: str, chosen: str | None
) -> None:
    assert choose_encoding(accept, encodings, default) == chosen


def run(
    config: CompressConfig,
    request_headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    response_headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
) -> tuple[dict[str, Any], list[bytes]]:
    """The start message and the body pieces the client gets for an answer sent in
    ``chunks`` (without Content-Length unless ``response_headers`` has one)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = response_headers or [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    request = scope(method, [(b"host", b"a.test"), *request_headers])
    sent = run_app(Compress(app, config), request)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    pieces = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert sent[-1]["type"] == "http.response.body" and not sent[-1].get("more_body")
    return start, pieces


def header(start: dict[str, Any], name: bytes) -> list[bytes]:
    return [v for k, v in start["headers"] if k == name]


DECODE = {b"gzip": gzip.decompress, b"br": brotli.decompress,
          b"zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data)}  # fmt: skip
LENGTH = [(b"content-type", b"text/plain"), (b"content-length", b"4000")]


@pytest.mark.parametrize("encoding", [b"gzip", b"br", b"zstd"])
def test_an_answer_of_min_size_is_compressed_and_decodes_to_the_same_bytes(
    encoding: bytes,
) -> None:
    body = [bytes([65 + i % 26]) * 100 for i in range(40)]
    start, pieces = run(CompressConfig(), [(b"accept-encoding", encoding)], body, LENGTH)
    assert header(start, b"content-encoding") == [encoding]
    assert header(start, b"content-length") == []
    assert header(start, b"vary") == [b"Accept-Encoding"]
    assert DECODE[encoding](b"".join(pieces)) == b"".join(body)


@pytest.mark.parametrize("encoding", [b"gzip", b"br", b"zstd"])
def test_a_streamed_answer_is_compressed_piece_by_piece_holding_at_most_min_size(
    encoding: bytes,
) -> None:
    """An answer of unknown length is flushed at every write, as Go's proxy does: each
    piece leaves compressed at once (a client can decode what it has), even below
    minResponseBodyBytes."""
    body = [b"x" * 10, b"y" * 10, b"z" * 10]
    start, pieces = run(CompressConfig(), [(b"accept-encoding", encoding)], body)
    assert header(start, b"content-encoding") == [encoding]
    assert len([p for p in pieces if p]) >= 3  # one flush per piece, then the end
    assert DECODE[encoding](b"".join(pieces)) == b"".join(body)


@pytest.mark.parametrize("encoding", [b"gzip", b"br"])
def test_an_answer_below_min_size_with_a_length_goes_out_as_it_was_with_vary(
    encoding: bytes,
) -> None:
    length = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    start, pieces = run(CompressConfig(), [(b"accept-encoding", encoding)], [b"hello"], length)
    assert header(start, b"content-encoding") == []
    assert header(start, b"content-length") == [b"5"]
    assert header(start, b"vary") == [b"Accept-Encoding"]
    assert b"".join(pieces) == b"hello"


def test_no_accept_encoding_takes_the_default_but_gzhttp_wants_gzip_named() -> None:
    body = [b"a" * 2000]
    start, _ = run(CompressConfig(default_encoding="br"), [], body, LENGTH)
    assert header(start, b"content-encoding") == [b"br"]
    start, pieces = run(CompressConfig(default_encoding="gzip"), [], body, LENGTH)
    assert header(start, b"content-encoding") == []
    assert header(start, b"vary") == [b"Accept-Encoding"]
    assert b"".join(pieces) == body[0]
    start, _ = run(CompressConfig(), [], body, LENGTH)  # no default: untouched
    assert header(start, b"vary") == []


def test_the_gateways_own_accept_encoding_for_the_backend_is_not_the_clients() -> None:
    """An empty Accept-Encoding makes the gateway add `gzip` for the backend (as Go's
    transport does); compress still sees only the client's empty one."""
    start, _ = run(CompressConfig(), [(b"accept-encoding", b"")], [b"a" * 2000], LENGTH)
    assert header(start, b"content-encoding") == [] and header(start, b"vary") == []


def test_an_answer_with_a_content_encoding_or_an_excluded_type_is_untouched() -> None:
    encoded = [(b"content-encoding", b"x-custom"), (b"content-length", b"2000")]
    for encoding in (b"gzip", b"br"):
        start, _ = run(CompressConfig(), [(b"accept-encoding", encoding)], [b"a" * 2000], encoded)
        assert header(start, b"content-encoding") == [b"x-custom"]
    grpc = [(b"content-type", b"application/grpc"), (b"content-length", b"2000")]
    for encoding in (b"gzip", b"zstd"):
        start, _ = run(CompressConfig(), [(b"accept-encoding", encoding)], [b"a" * 2000], grpc)
        assert header(start, b"content-encoding") == []


def test_included_types_match_by_media_type_and_by_parameters_when_listed() -> None:
    config = CompressConfig(included_content_types=("text/html; charset=utf-8", "text/css"))
    cases = [(b"text/css; charset=latin1", True), (b"text/html; charset=utf-8", True),
             (b"text/html", False), (b"text/plain", False)]  # fmt: skip
    for content_type, compressed in cases:
        for encoding in (b"gzip", b"br"):
            response = [(b"content-type", content_type), (b"content-length", b"2000")]
            start, _ = run(config, [(b"accept-encoding", encoding)], [b"a" * 2000], response)
            assert bool(header(start, b"content-encoding")) is compressed, (content_type, encoding)


def test_a_head_request_or_an_excluded_request_type_passes_untouched() -> None:
    start, _ = run(CompressConfig(), [(b"accept-encoding", b"br")], [b""], LENGTH, method="HEAD")
    assert header(start, b"vary") == []
    config = CompressConfig(excluded_content_types=("text/event-stream",))
    request = [(b"accept-encoding", b"br"), (b"content-type", b"Text/Event-Stream; x=1")]
    start, _ = run(config, request, [b"a" * 2000], LENGTH)
    assert header(start, b"vary") == [] and header(start, b"content-encoding") == []


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("{excludedContentTypes: [a/b], includedContentTypes: [c/d]}",
         "spec.compress.includedContentTypes",
         "excludedContentTypes and includedContentTypes options are mutually exclusive"),
        ("{excludedContentTypes: [text/html/x]}", "spec.compress.excludedContentTypes[0]",
         "parsing excluded media type: mime: unexpected content after media subtype "
         '(got "text/html/x")'),
        ("{includedContentTypes: ['text/html; charset']}",
         "spec.compress.includedContentTypes[0]",
         "parsing included media type: mime: invalid media parameter "
         '(got "text/html; charset")'),
        ("{encodings: []}", "spec.compress.encodings", "at least one encoding must be specified"),
        ("{encodings: [gzip, deflate]}", "spec.compress.encodings[1]",
         "unsupported encoding: deflate"),
        ("{encodings: [br], defaultEncoding: gzip}", "spec.compress.defaultEncoding",
         "unsupported default encoding: gzip"),
    ],
)  # fmt: skip
def test_a_compress_traefik_cannot_build_warns_unused_and_refuses_the_route_using_it(
    spec: str, field: str, message: str
) -> None:
    # compress.New checks these when it builds the middleware for a router.
    assert_unbuilt(f"compress: {spec}", f"{field}: {message}")


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("{minResponseBodyBytes: -1}", "spec.compress.minResponseBodyBytes", "must be"),
        ("{level: 5}", "spec.compress.level", "unknown field"),
    ],
)  # fmt: skip
def test_a_compress_the_kubernetes_api_refuses_is_a_load_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    (issue,) = middleware_errors(f"compress: {spec}")
    assert f"{field}: " in issue
    assert message in issue


def test_an_answer_without_content_type_is_compressed_and_left_without_one() -> None:
    """gzhttp would sniff and set a Content-Type here (docs/differences.md): the gateway
    leaves it out, as on every answer it relays; both compress it."""
    for encoding in (b"gzip", b"br"):
        length = [(b"content-length", b"2000")]
        start, pieces = run(
            CompressConfig(), [(b"accept-encoding", encoding)], [b"a" * 2000], length
        )
        assert header(start, b"content-encoding") == [encoding]
        assert header(start, b"content-type") == []
        assert DECODE[encoding](b"".join(pieces)) == b"a" * 2000
