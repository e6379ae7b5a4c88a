"""A client that goes away: the backend request is cancelled, no copy is sent, 499 logged."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app
from tests.support.loops import TimerRecordingLoop
from tests.support.manifests import MIRROR_100
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.lifecycle import _Overdue, _Watch, serve_watched


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.event.set()


def test_client_leaving_cancels_the_backend_request_and_sends_no_copy(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    records = Records()
    logger = logging.getLogger("traefikservice_asgi.access")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        with RecordingBackend("main", delay=30) as main, RecordingBackend("copy") as copy:
            app = create_app(
                tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
            )
            with serve_app(app) as url:
                port = int(url.rsplit(":", 1)[1])
                with socket.create_connection(("127.0.0.1", port)) as client:
                    client.sendall(b"GET /slow HTTP/1.1\r\nHost: m.test\r\n\r\n")
                    main.wait_for_requests(1)
                # The client is gone while main is still thinking.
                assert records.event.wait(10), "no 499 logged"
                assert httpx.get(url, headers={"Host": "other"}).status_code == 404  # still serving
            assert copy.requests == []  # no mirror copy for a request whose client left
            assert app.mirror_pool.sent == 0
    finally:
        logger.removeHandler(records)
    assert records.messages == ["499 Client Closed Request: GET /slow"]


def test_trusted_peer_keeps_its_forwarded_headers(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MIRROR_100.replace("percent: 100", "percent: 0"))
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path,
            backends={"default/main:80": main.url, "default/copy:80": copy.url},
            forwarded_trusted_ips=["127.0.0.0/8"],
        )
        with serve_app(app) as url:
            httpx.get(
                url,
                headers={
                    "Host": "m.test",
                    "X-Forwarded-For": "203.0.113.7",
                    "X-Forwarded-Proto": "https",
                },
            )
        (req,) = main.wait_for_requests(1)
    assert req.header("x-forwarded-for") == "203.0.113.7, 127.0.0.1"
    assert req.header("x-forwarded-proto") == "https"
    assert req.header("x-forwarded-port") == "443"


def test_invalid_trusted_cidr_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid IP or CIDR 'not-an-ip'"):
        create_app(
            Path(__file__).parents[2] / "examples" / "blog", forwarded_trusted_ips=["not-an-ip"]
        )


def test_fast_requests_schedule_no_timer_each() -> None:
    """The grace before a request's client is watched is seen by one timer per loop
    visiting the requests in flight, not a timer per request."""
    requests = 100

    async def fast(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> int:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, TimerRecordingLoop)
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        for _ in range(requests):
            scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/"}
            await serve_watched(fast, scope, receive, send, has_body=False)
        assert len(sent) == 2 * requests
        return loop.scheduled_by(_Overdue) + loop.scheduled_by(_Watch)

    loop = TimerRecordingLoop()
    try:
        assert loop.run_until_complete(main()) <= 1
    finally:
        loop.close()
