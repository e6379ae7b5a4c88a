"""A keep-alive HTTP/1.1 backend that drops every Nth connection unanswered.

    python -m tests.support.flaky_backend EVERY STATS_FILE

Prints its port on the first line of stdout. Each connection number that is a multiple
of EVERY is closed after its first request head, before any answer (what a crashing or
overloaded pod does); the others answer ``Hello app-v1``. On SIGTERM it writes
``{"connections": N, "dropped": D, "answered": A}`` to STATS_FILE and exits.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello app-v1\n"


async def main(every: int) -> dict[str, int]:
    stats = {"connections": 0, "dropped": 0, "answered": 0}

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        number = stats["connections"]
        try:
            first = True
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if first and number % every == 0:
                    stats["dropped"] += 1
                    return
                first = False
                writer.write(HELLO)
                stats["answered"] += 1
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    return stats


if __name__ == "__main__":
    result = asyncio.run(main(int(sys.argv[1])))
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)
