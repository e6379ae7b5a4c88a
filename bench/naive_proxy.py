"""The floor: a naive pure-ASGI reverse proxy over one shared ``httpx.AsyncClient``.

What anyone would write in ten minutes, deliberately untuned (httpx defaults, no header
rewriting, no routing): the gateway's overhead beyond this is what its Traefik semantics
cost. Upstream from ``$NAIVE_UPSTREAM``; run with ``uvicorn --app-dir bench naive_proxy:app``.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

UPSTREAM = os.environ.get("NAIVE_UPSTREAM", "http://127.0.0.1:9001")
client = httpx.AsyncClient(base_url=UPSTREAM, trust_env=False)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Forward the request, stream the answer back as raw ASGI messages."""
    if scope["type"] != "http":
        return  # lifespan: nothing to set up (run uvicorn with --lifespan off)
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
    request = client.build_request(scope["method"], target, headers=headers, content=body)
    response = await client.send(request, stream=True)
    try:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.headers.raw,
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()
