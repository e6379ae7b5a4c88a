"""The walkthrough, replayed on loopback: ``traefikservice-asgi demo``.

Two backends answer ``Hello app-v1`` / ``Hello app-v2`` like the walkthrough's nginx pods;
the gateway loads the walkthrough's YAML unchanged (shipped in ``_blog/``) with the two
Services pointed at the backends' ports, and the three experiments are sent as curl
would send them (no cookie jar, one ``Host`` header per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from .app import create_app
from .transport import no_cookie_jar

__all__ = ["BLOG_YAML", "Backend", "run_demo"]

BLOG_YAML = Path(__file__).with_name("_blog")

WRR_HOST = "traefikservice-wrr.kubesre.lc"
STICKY_HOST = "traefikservice-cokie.kubesre.lc"
MIRROR_HOST = "traefikservice-copy.kubesre.lc"


class Backend:
    """An nginx-like app: ``Hello <name>\\n`` for every path; remembers the Host header
    of every request it received, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = next((v.decode() for k, v in scope["headers"] if k == b"host"), "")
        self.received.append(host)
        body = f"Hello {self.name}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def _serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", proxy_headers=False, server_header=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):  # bounded: 5 s
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _get(
    client: httpx.AsyncClient, url: str, host: str, cookie: str | None = None
) -> httpx.Response:
    headers = {"Host": host, "User-Agent": "curl/7.88.1", "Accept": "*/*"}
    if cookie:
        headers["Cookie"] = cookie
    return await client.get(url, headers=headers)


async def run_demo(count: int = 9, *, echo: Callable[[str], object] = print) -> int:
    """Run the three experiments; 0 when every request was answered as expected."""
    v1, v2 = Backend("app-v1"), Backend("app-v2")
    failures = 0
    async with _serve(v1) as v1_url, _serve(v2) as v2_url:
        gateway = create_app(
            BLOG_YAML, backends={"default/app-v1:80": v1_url, "default/app-v2:80": v2_url}
        )
        async with (
            _serve(gateway) as url,
            httpx.AsyncClient(cookies=no_cookie_jar(), trust_env=False) as client,
        ):
            echo(f"backends: app-v1 {v1_url}, app-v2 {v2_url}; gateway {url}\n")

            echo(
                f"# 1. weighted round robin, app-v1 weight 1, app-v2 weight 2: {count} x curl {WRR_HOST}"
            )
            seen = {"app-v1": 0, "app-v2": 0}
            for _ in range(count):
                r = await _get(client, url, WRR_HOST)
                echo(r.text.rstrip("\n"))
                failures += r.status_code != 200
                name = r.text.strip().removeprefix("Hello ")
                seen[name] = seen.get(name, 0) + 1
            echo(f"=> app-v1 {seen['app-v1']} times, app-v2 {seen['app-v2']} times\n")

            for app in ("app-v1", "app-v2"):
                cookie = f"cookie=default-{app}-80"
                echo(f"# 2. sticky cookie: 5 x curl -b {cookie!r} {STICKY_HOST}")
                pinned = 0
                for _ in range(5):
                    r = await _get(client, url, STICKY_HOST, cookie)
                    echo(f"{r.text.rstrip()}    (Set-Cookie: {r.headers.get('set-cookie', '-')})")
                    pinned += r.status_code == 200 and r.text.strip() == f"Hello {app}"
                failures += 5 - pinned
                echo(f"=> {app} {pinned} times out of 5\n")

            echo(f"# 3. mirroring 10 % of app-v1's traffic to app-v2: {count} x curl {MIRROR_HOST}")
            answers = 0
            mirrored: list[int] = []
            for n in range(1, count + 1):
                before = v2.received.count(MIRROR_HOST)
                r = await _get(client, url, MIRROR_HOST)
                echo(r.text.rstrip("\n"))
                answers += r.status_code == 200 and r.text.strip() == "Hello app-v1"
                # Copies leave after the response; wait for this one's before the next.
                await gateway.mirror_pool.wait_idle(timeout=5.0)
                if v2.received.count(MIRROR_HOST) > before:
                    mirrored.append(n)
            failures += count - answers
            listed = ", ".join(map(str, mirrored)) or "none"
            copies = "mirrored copy" if len(mirrored) == 1 else "mirrored copies"
            echo(
                f"=> clients got Hello app-v1 {answers} times out of {count}; "
                f"app-v2 received {len(mirrored)} {copies}, of requests: {listed}"
            )
    if failures:
        echo(f"\n{failures} request(s) were not answered as the walkthrough expects")
    return 1 if failures else 0
