"""Stream 1 GiB up and 1 GiB down through the gateway; print its peak RSS over idle.

    python bench/stream_rss.py [--gib 1]

A backend (uvicorn, its own process) counts an upload without keeping it and serves a
download generated on the fly; the gateway (`traefikservice-asgi serve`, its own process)
sits between; the client streams from this process. The gateway's idle RSS is read after
a warm-up request, its peak from the kernel's high-water mark (VmHWM), so nothing is
missed between samples. Loopback only; every transfer bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 256 * 1024

BACKEND = r"""
import sys, uvicorn
GIB = int(sys.argv[2])
async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        return
    if scope["method"] == "POST":
        total = 0
        while True:
            m = await receive()
            total += len(m.get("body", b""))
            if not m.get("more_body"):
                break
        body = str(total).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    size = GIB * 1024**3
    chunk = b"x" * (256 * 1024)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(size).encode())]})
    for _ in range(size // len(chunk)):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""

ROUTE = """apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: stream, namespace: default}
spec:
  routes:
    - match: Host(`stream.test`)
      services: [{name: sink, port: 80}]
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def wait_up(url: str, host: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, headers={"Host": host}, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def upload(url: str, size: int) -> int:
    async def body():  # type: ignore[no-untyped-def]
        chunk = b"y" * CHUNK
        for _ in range(size // CHUNK):
            yield chunk

    async with httpx.AsyncClient(timeout=300) as client:
        r = await client.post(
            url, content=body(), headers={"Host": "stream.test", "Content-Length": str(size)}
        )
        return int(r.text)


async def download(url: str) -> int:
    total = 0
    async with (
        httpx.AsyncClient(timeout=300) as client,
        client.stream(
            "GET", url, headers={"Host": "stream.test", "Accept-Encoding": "identity"}
        ) as r,
    ):
        async for chunk in r.aiter_raw(CHUNK):
            total += len(chunk)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=int, default=1, help="GiB each way (default 1)")
    args = parser.parse_args()
    size = args.gib * 1024**3
    backend_port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "route.yaml").write_text(ROUTE)
        procs = [
            subprocess.Popen([sys.executable, "-c", BACKEND, str(backend_port), str(args.gib)]),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "traefikservice_asgi",
                    "serve",
                    tmp,
                    "--port",
                    str(gateway_port),
                    "--log-level",
                    "error",
                    "--backend",
                    f"default/sink:80=http://127.0.0.1:{backend_port}",
                ],
                cwd=ROOT,
            ),
        ]
        gateway = procs[1]
        url = f"http://127.0.0.1:{gateway_port}/"
        try:
            wait_up(f"http://127.0.0.1:{backend_port}/", "x")
            wait_up(url, "warmup.invalid")
            httpx.post(url, content=b"warm", headers={"Host": "stream.test"})
            idle = kib(gateway.pid, "VmRSS")
            # Reset the high-water mark so the peak is this run's (Linux: write 5 to clear_refs).
            Path(f"/proc/{gateway.pid}/clear_refs").write_text("5")
            started = time.monotonic()
            up = asyncio.run(upload(url, size))
            down = asyncio.run(download(url))
            elapsed = time.monotonic() - started
            peak = kib(gateway.pid, "VmHWM")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)
    assert up == size, f"backend received {up} bytes, expected {size}"
    assert down == size, f"client received {down} bytes, expected {size}"
    print(
        f"streamed {args.gib} GiB up and {args.gib} GiB down in {elapsed:.1f} s "
        f"({2 * size / elapsed / 2**20:.0f} MiB/s)"
    )
    print(
        f"gateway RSS: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
        f"increase {(peak - idle) / 1024:.1f} MiB (acceptance: < 32 MiB)"
    )
    sys.exit(0 if peak - idle < 32 * 1024 else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
