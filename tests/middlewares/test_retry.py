"""retry: only a request never sent is tried again, its body replayed; the backoff."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from traefikservice_asgi.config.middlewares import Retry as RetryConfig
from traefikservice_asgi.middlewares.retry import Retry, backoff_intervals
from traefikservice_asgi.responses import send_proxy_error


def test_backoff_grows_by_the_attempts_root_of_two_within_half_either_side() -> None:
    waits = backoff_intervals(0.1, 3, random.Random(1))
    assert len(waits) == 2
    assert 0.05 <= waits[0] <= 0.15
    assert 0.0707 <= waits[1] <= 0.2122  # 0.1 * 2 ** 0.5, +-50 %
    assert backoff_intervals(0.0, 3, random.Random(1)) == [0.0, 0.0]


def run(app: Any, attempts: int, body: list[bytes]) -> tuple[list[Any], list[bytes]]:
    sent: list[Any] = []
    messages = [
        {"type": "http.request", "body": b, "more_body": i < len(body) - 1}
        for i, b in enumerate(body)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    retry = Retry(app, RetryConfig(attempts))
    asyncio.run(retry({"type": "http"}, receive, send))
    return sent, [m["body"] for m in sent if m["type"] == "http.response.body"]


def test_a_refused_connection_is_retried_with_the_body_read_so_far_replayed() -> None:
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        chunks = b""
        while True:
            message = await receive()
            chunks += message["body"]
            if not message.get("more_body"):
                break
        seen.append(chunks)
        if len(seen) < 3:
            await send_proxy_error(send, 502, not_sent=True)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    sent, bodies = run(app, 3, [b"a=", b"1"])
    assert seen == [b"a=1"] * 3
    assert sent[0]["status"] == 200 and bodies == [b"ok"]


def test_an_answer_or_a_failure_after_sending_is_not_retried_and_the_last_try_is_kept() -> None:
    calls = 0

    async def sent_then_failed(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send_proxy_error(send, 502)

    sent, bodies = run(sent_then_failed, 3, [b""])
    assert calls == 1 and sent[0]["status"] == 502

    calls = 0

    async def never_sent(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send_proxy_error(send, 502, not_sent=True)

    sent, bodies = run(never_sent, 3, [b""])
    assert calls == 3 and [m["status"] for m in sent if "status" in m] == [502]
    assert bodies == [b"Bad Gateway"]
