"""retry: only a request never sent is tried again, its body replayed; the backoff."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.support.asgi import scope
from tests.support.config import middleware_errors
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


def by_status(statuses: list[int], seen: list[bytes], delay: float = 0.0) -> Any:
    """An app answering the next of ``statuses``, recording each body it read."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(data)
        await asyncio.sleep(delay)
        status = statuses[min(len(seen), len(statuses)) - 1]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": str(status).encode()})

    return app


def call(config: RetryConfig, app: Any, method: str, body: list[bytes]) -> int:
    messages = [
        {"type": "http.request", "body": b, "more_body": i < len(body) - 1}
        for i, b in enumerate(body)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [(b"host", b"a.test"), (b"content-length", str(sum(map(len, body))).encode())]
    asyncio.run(Retry(app, config)(scope(method, headers), receive, send))
    (status,) = [m["status"] for m in sent if m["type"] == "http.response.start"]
    return int(status)


def test_a_listed_status_is_retried_for_idempotent_methods_with_the_body_replayed() -> None:
    seen: list[bytes] = []
    config = RetryConfig(3, status=((502, 503),))
    assert call(config, by_status([503, 502, 200], seen), "PUT", [b"a=", b"1"]) == 200
    assert seen == [b"a=1"] * 3
    seen = []
    assert call(config, by_status([503, 200], seen), "POST", [b"a=1"]) == 503
    assert seen == [b"a=1"]  # POST, PATCH, LOCK: not without retryNonIdempotentMethod
    seen = []
    config = RetryConfig(2, status=((503, 503),), retry_non_idempotent_method=True)
    assert call(config, by_status([503, 200], seen), "POST", [b"a=1"]) == 200


def test_a_body_over_max_request_body_bytes_is_not_retried_on_a_status() -> None:
    seen: list[bytes] = []
    config = RetryConfig(3, status=((503, 503),), max_request_body_bytes=3)
    assert call(config, by_status([503, 200], seen), "PUT", [b"ab", b"cd"]) == 503
    assert seen == [b"abcd"]  # what was read up front still reaches the service whole
    seen = []
    assert call(config, by_status([503, 200], seen), "PUT", [b"abc"]) == 200


def test_no_retry_once_the_timeout_has_passed_since_the_first_try() -> None:
    seen: list[bytes] = []
    config = RetryConfig(3, status=((503, 503),), timeout=0.05)
    assert call(config, by_status([503, 200], seen, delay=0.06), "GET", [b""]) == 503
    assert len(seen) == 1


def test_disable_retry_on_network_error_leaves_a_refused_connection_to_the_client() -> None:
    calls = 0

    async def never_sent(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send_proxy_error(send, 502, not_sent=True)

    config = RetryConfig(3, status=((503, 503),), disable_retry_on_network_error=True)
    assert call(config, never_sent, "GET", [b""]) == 502 and calls == 1


def test_retry_fields_traefik_refuses_are_load_errors_at_their_field() -> None:
    (issue,) = middleware_errors("retry: {attempts: 2, maxRequestBodyBytes: -2}")
    assert "spec.retry.maxRequestBodyBytes: must be an integer >= -1" in issue
    (issue,) = middleware_errors("retry: {attempts: 2, timeout: soon}")
    assert "spec.retry.timeout: " in issue
    (issue,) = middleware_errors("retry: {attempts: 2, onStatus: [503]}")
    assert "spec.retry.onStatus: unknown field" in issue
