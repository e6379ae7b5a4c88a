"""Load with a misbehaving backend: every request gets the status Traefik gives, and
20,000 requests leave no task, socket or memory behind.

Gateway and backend run in processes of their own: in one process, threads take turns on
the GIL (5 ms switch interval), and the test would measure that instead of the gateway.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.traefik import free_port
from tests.test_faults import write_config

ROOT = Path(__file__).resolve().parents[1]


async def _client(port: int, count: int, statuses: Counter[int], bodies: Counter[bytes]) -> None:
    """One keep-alive client connection sending ``count`` GETs, one after the other."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET / HTTP/1.1\r\nHost: f.test\r\n\r\n"
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            bodies[await reader.readexactly(length)] += 1
            statuses[status] += 1
    finally:
        writer.close()


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


def _introspect(url: str) -> dict[str, int]:
    data: dict[str, int] = httpx.get(url, headers={"Host": "introspect.invalid"}).json()
    return data


def test_load_with_a_backend_dropping_connections_gives_traefiks_statuses_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    stats_file = tmp_path / "stats.json"  # beside, not inside, the config folder
    (tmp_path / "config").mkdir()
    config = write_config(tmp_path / "config")
    with process("tests.support.flaky_backend", "10", str(stats_file)) as backend:
        assert backend.stdout is not None
        backend_port = int(backend.stdout.readline())
        port = free_port()
        with process(
            "tests.support.gateway_process",
            str(port),
            str(config),
            f"default/app:80=http://127.0.0.1:{backend_port}",
        ):
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    before = _introspect(url)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "gateway did not start"
                    time.sleep(0.05)
            statuses: Counter[int] = Counter()
            bodies: Counter[bytes] = Counter()
            rss: list[int] = []
            started = time.monotonic()
            for _ in range(2):  # two rounds of 64 clients x 157 requests: 20,096 in all

                async def one_round() -> None:
                    clients = (_client(port, 157, statuses, bodies) for _ in range(64))
                    await asyncio.wait_for(asyncio.gather(*clients), 150)

                asyncio.run(one_round())
                rss.append(_introspect(url)["rss"])
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 5
            after = _introspect(url)
            while after["tasks"] > before["tasks"] and time.monotonic() < deadline:
                time.sleep(0.05)
                after = _introspect(url)
    stats = json.loads(stats_file.read_text())
    total = 2 * 64 * 157
    assert sum(statuses.values()) == total
    # Each dropped connection cost exactly its one request a 502, as in Traefik (Go does
    # not retry a request whose fresh connection died); every other request got its answer.
    assert statuses[502] == stats["dropped"] > 0
    assert statuses[200] == stats["answered"] == total - stats["dropped"]
    assert bodies == {b"Hello app-v1\n": statuses[200], b"Bad Gateway": statuses[502]}
    assert after["tasks"] <= before["tasks"]  # no task left behind by 20,000 requests
    # Client sockets are closed; what stays open is the pool of idle backend connections.
    assert after["fds"] <= before["fds"] + 64
    assert rss[1] - rss[0] < 16 * 2**20  # the second round grew memory by < 16 MiB: no leak
    print(f"{total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), {stats}")
