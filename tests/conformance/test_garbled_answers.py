"""A backend's garbled answer gets the status (and body) Traefik 3.7.15 gives it.

Each answer is sent by a raw-socket backend (then a graceful close) to the real Traefik
and to the gateway under uvicorn; both clients' status lines and bodies are compared.
The table this checks is in docs/guides/production.md ("Which backend failure maps to
which status"): Go's ``ReadResponse`` errors are 500, a close before any byte is 502.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tests.conformance.runner import requires_traefik
from tests.test_faults import beside_traefik

pytestmark = requires_traefik

OK_HEAD = b"HTTP/1.1 200 OK\r\n"
CHUNKED_OK = b"\r\n2\r\nok\r\n0\r\n\r\n"
ANSWERS = {
    "bad-status-line": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok",
    "not-http": b"this is not HTTP\r\n\r\n",
    "no-reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "bad-header-line": OK_HEAD + b"Bad Header Line\r\nContent-Length: 2\r\n\r\nok",
    "bad-header-name": OK_HEAD + b"X(A): 1\r\nContent-Length: 2\r\n\r\nok",
    "nul-in-header": OK_HEAD + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "cl-invalid": OK_HEAD + b"Content-Length: abc\r\n\r\nok",
    "cl-negative": OK_HEAD + b"Content-Length: -1\r\n\r\nok",
    "cl-plus": OK_HEAD + b"Content-Length: +2\r\n\r\nok",
    "cl-list": OK_HEAD + b"Content-Length: 2, 2\r\n\r\nok",
    "cl-conflicting": OK_HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "cl-and-te": OK_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n" + CHUNKED_OK,
    "te-chunked-identity": OK_HEAD + b"Transfer-Encoding: chunked, identity\r\n" + CHUNKED_OK,
    "te-identity": OK_HEAD + b"Transfer-Encoding: identity\r\n\r\nok",
    "te-unknown": OK_HEAD + b"Transfer-Encoding: gzip\r\n\r\nok",
    "te-gzip-chunked": OK_HEAD + b"Transfer-Encoding: gzip, chunked\r\n" + CHUNKED_OK,
    "te-twice": OK_HEAD
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
    + CHUNKED_OK,
    "truncated-head": OK_HEAD + b"Content-Le",
    "nothing": b"",
    "101-unasked": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\n\r\n",
    "200-then-302": OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    b"HTTP/1.1 302 Found\r\nLocation: /evil\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n",
    "chunked-then-junk": OK_HEAD + b"Transfer-Encoding: chunked\r\n" + CHUNKED_OK + b"junk",
}


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWERS[head.split(b" ")[1][1:].decode()])
    await writer.drain()
    await asyncio.sleep(0.2)  # then a graceful close


def _status_and_body(base: str, name: str) -> tuple[bytes, bytes]:
    """The client's status line and body (de-chunked), over a raw socket."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /{name} HTTP/1.1\r\nHost: f.test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            length = int(size.split(b";")[0], 16)
            if not length:
                break
            decoded, body = decoded + rest[:length], rest[length + 2 :]
        body = decoded
    return status, body


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with beside_traefik(tmp_path_factory.mktemp("garbled"), _answer) as urls:
        yield urls


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_garbled_answer_gets_traefiks_status_and_body(both: tuple[str, str], name: str) -> None:
    traefik, gateway = both
    assert _status_and_body(gateway, name) == _status_and_body(traefik, name)


def test_the_oracle_answers_500_for_what_go_cannot_parse(both: tuple[str, str]) -> None:
    traefik, _ = both
    assert _status_and_body(traefik, "te-chunked-identity")[0].startswith(b"HTTP/1.1 500")
    assert _status_and_body(traefik, "nothing")[0].startswith(b"HTTP/1.1 502")
