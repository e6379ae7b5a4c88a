"""The gateway in its own process, for load tests, with an introspection hook.

    python -m tests.support.gateway_process PORT CONFIG_DIR NS/NAME:PORT=URL ...

Requests with ``Host: introspect.invalid`` are answered by the wrapper (never the
gateway) with JSON: the event loop's task count, open file descriptors and RSS, so a
test can count what a load left behind. Everything else goes to ``create_app``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from traefikservice_asgi import create_app


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def introspectable(app: ASGIApp) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"host", b"introspect.invalid") in scope["headers"]:
            rss = _rss()
            body = json.dumps(
                {
                    "tasks": len(asyncio.all_tasks()),
                    "fds": len(os.listdir("/proc/self/fd")),
                    "rss": rss,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapper


def main() -> None:
    port, config, *pairs = sys.argv[1:]
    backends = dict(pair.split("=", 1) for pair in pairs)
    app = introspectable(create_app(config, backends=backends))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(port),
        log_level="error",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
