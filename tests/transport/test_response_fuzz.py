"""Fuzzing the upstream response parser (HTTP11Connection fed through ``data_received``
with a fake transport): no exception escapes, a connection goes back to the pool only if
its response ended cleanly at the end of what was received, and the exchange never
holds bytes that were not part of the first response."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from traefikservice_asgi.transport.http11 import HTTP11Connection

RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", b"hello"),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        b"hello",
    ),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello",
        b"hello",
    ),
    (b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", b""),
]
HEADERS = {
    0: [(b"Content-Length", b"5"), (b"X-A", b"1")],
    1: [(b"Transfer-Encoding", b"chunked")],
    2: [(b"Content-Length", b"5")],
    3: [(b"X-A", b"1")],
}
LOOP = asyncio.new_event_loop()


class _Pool:
    closed = False

    def __init__(self) -> None:
        self.released: list[HTTP11Connection] = []

    def release(self, connection: HTTP11Connection) -> None:
        self.released.append(connection)

    def forget(self, connection: HTTP11Connection) -> None:
        pass

    def redial(self, request: Any, owner: Any) -> Any:
        raise AssertionError("no retry here")


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _feed(pieces: list[bytes]) -> tuple[HTTP11Connection, _Pool, Any, bytes]:
    async def make() -> HTTP11Connection:
        return HTTP11Connection(pool, (b"http", b"127.0.0.1", 80))

    pool = _Pool()
    connection = LOOP.run_until_complete(make())
    connection.connection_made(_Transport())  # type: ignore[arg-type]
    exchange = connection._begin(False, False)
    for piece in pieces:
        connection.data_received(piece)
    body = b"".join(exchange.body)
    if exchange.complete:
        connection.finish(exchange)
    return connection, pool, exchange, body


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_arbitrary_bytes_never_raise_and_are_pooled_only_after_a_clean_end(
    pieces: list[bytes],
) -> None:
    _, pool, exchange, _ = _feed(pieces)
    if pool.released:
        assert exchange.complete and exchange.error is None and exchange.reusable


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(range(len(RESPONSES))),
    st.binary(max_size=40),
    st.lists(st.integers(min_value=0, max_value=500), max_size=4),
)
def test_a_valid_response_followed_by_junk_yields_exactly_that_response(
    which: int, junk: bytes, cuts: list[int]
) -> None:
    raw, body = RESPONSES[which]
    _, pool, exchange, received = _feed(_split(raw + junk, cuts))
    assert exchange.complete and exchange.error is None
    assert exchange.headers == HEADERS[which]
    assert received == body
    # Blank lines between messages are skipped by llhttp and leave the stream in sync.
    # A blank line after a message arriving in the same read is skipped by llhttp and
    # leaves the stream in sync; anything else after the message closes the connection.
    if pool.released:
        assert not junk.strip(b"\r\n")
    if not junk:
        assert pool.released
