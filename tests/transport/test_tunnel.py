"""The tunnel on real loopback connections: bytes cross both ways unchanged, a side that
does not read stops the tunnel reading the other (so that one's writes block), and the
first side to finish ends both after what is in flight has been delivered."""

from __future__ import annotations

import asyncio
import os

from traefikservice_asgi.transport.tunnel import MAX_HELD, Tunnel, canonical_header_key

MIB = 1024 * 1024


class _Plain(asyncio.Protocol):
    """The gateway's end of a connection before the tunnel takes it."""

    def __init__(self, made: asyncio.Future[asyncio.Transport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.set_result(transport)  # type: ignore[arg-type]


async def _pair() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Transport]:
    """A peer (reader/writer) connected to a transport of ours, over 127.0.0.1."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

    def factory() -> _Plain:
        return _Plain(accepted)

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=MIB)
    transport = await asyncio.wait_for(accepted, 10)
    server.close()
    return reader, writer, transport


async def _tunnel() -> tuple[
    Tunnel,
    tuple[asyncio.StreamReader, asyncio.StreamWriter],
    tuple[asyncio.StreamReader, asyncio.StreamWriter],
]:
    client_r, client_w, client_t = await _pair()
    backend_r, backend_w, backend_t = await _pair()
    tunnel = Tunnel(backend_t, b"after-101:")
    tunnel.join(client_t, b"early:")
    return tunnel, (client_r, client_w), (backend_r, backend_w)


def test_bytes_cross_both_ways_unchanged_and_the_first_to_finish_ends_both() -> None:
    async def main() -> None:
        tunnel, (client_r, client_w), (backend_r, backend_w) = await _tunnel()
        up, down = os.urandom(3 * MIB), os.urandom(3 * MIB)
        client_w.write(up)
        backend_w.write(down)
        assert await backend_r.readexactly(6 + len(up)) == b"early:" + up
        assert await client_r.readexactly(10 + len(down)) == b"after-101:" + down
        backend_w.write(b"last words")
        backend_w.close()  # the backend finishes: what it sent arrives, then the end
        assert await asyncio.wait_for(client_r.read(), 10) == b"last words"
        await asyncio.wait_for(tunnel.wait(), 10)
        client_w.close()

    asyncio.run(main())


def test_a_side_that_never_reads_stops_the_tunnel_reading_the_other() -> None:
    async def main() -> None:
        tunnel, (client_r, client_w), (_, backend_w) = await _tunnel()
        sent = peak = 0
        for _ in range(64):  # 64 MiB at most, while the client reads nothing
            backend_w.write(bytes(MIB))
            try:
                await asyncio.wait_for(backend_w.drain(), 0.5)
            except TimeoutError:
                break  # the backend's writes block: backpressure reached it
            sent += 1
            peak = max(peak, tunnel.held())
        peak = max(peak, tunnel.held())
        assert sent < 32, f"{sent} MiB accepted with nobody reading"
        assert peak <= MAX_HELD, f"the tunnel held {peak} bytes"
        backend_w.close()
        received = len(await asyncio.wait_for(client_r.read(), 30)) - len(b"after-101:")
        assert received >= sent * MIB  # then everything arrives
        await asyncio.wait_for(tunnel.wait(), 10)
        client_w.close()

    asyncio.run(main())


def test_header_names_are_canonical_as_in_go() -> None:
    assert canonical_header_key(b"sec-websocket-accept") == b"Sec-Websocket-Accept"
    assert canonical_header_key(b"X-ALPHA") == b"X-Alpha"
    assert canonical_header_key(b"x alpha") == b"x alpha"  # not a token: kept
