"""Load with a backend that sometimes sends bytes after its response (a second head, a
late 100, junk): every client gets its own answer, none a 502 or another's bytes.

Bounded (8 clients x 40 requests, loopback only, a few seconds): each answer carries the
request's own target, so a response relayed to the wrong client is caught.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from pathlib import Path

from tests.support.gateway import serve_app
from tests.test_faults import gateway_for, raw_backend

TRAILING = [
    b"",
    b"HTTP/1.1 302 Found\r\nLocation: /evil\r\nSet-Cookie: a=b\r\nContent-Le",
    b"",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"junk",
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
]
CLIENTS, REQUESTS = 8, 40


def test_a_backend_sending_trailing_bytes_never_harms_other_clients(tmp_path: Path) -> None:
    turn = itertools.count()

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            target = head.split(b" ")[1]
            extra = TRAILING[next(turn) % len(TRAILING)]
            # One write: the trailing bytes reach the gateway in the same read as the
            # answer. (Bytes arriving after the next request was sent cannot be told from
            # its answer, in Go's transport as here.)
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(target), target)
            writer.write(answer + extra)
            await writer.drain()

    async def one_client(port: int, index: int, seen: Counter[str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(REQUESTS):
                target = f"/c{index}/r{i}".encode()
                writer.write(b"GET %b HTTP/1.1\r\nHost: f.test\r\n\r\n" % target)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                ok = head.startswith(b"HTTP/1.1 200 ") and body == target
                ok = ok and b"set-cookie" not in head.lower() and b"location" not in head.lower()
                seen["ok" if ok else f"{head.split(b' ')[1].decode()} {body!r}"] += 1
        finally:
            writer.close()

    async def load(port: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        await asyncio.wait_for(
            asyncio.gather(*(one_client(port, c, seen) for c in range(CLIENTS))), 30
        )
        return seen

    with raw_backend(backend) as url, serve_app(gateway_for(tmp_path, url)) as gateway:
        seen = asyncio.run(load(int(gateway.rsplit(":", 1)[1])))
    assert seen == Counter({"ok": CLIENTS * REQUESTS})
