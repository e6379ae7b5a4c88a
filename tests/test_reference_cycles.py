"""The request path and the mirror copies leave no reference cycles behind.

Garbage that only the cycle collector can free makes it run often, and each run walks
everything alive, including a thousand mirror copies in flight: that stalled the event
loop for milliseconds and tripled the main path's p99 latency with 100 % mirroring to a
slow mirror (bench/mirror_latency.py). Everything a request allocates must be freed by
reference counting alone.
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.asgi import call_gateway
from tests.support.backends import RecordingBackend
from tests.support.manifests import MIRROR_100
from traefikservice_asgi import create_app
from traefikservice_asgi.observability import ObservabilityOptions

PACKAGE = "traefikservice_asgi"


def _ours(obj: object) -> str | None:
    """A name if ``obj`` was made by this package's code (its functions, coroutines,
    frames or instances); None for anything else in the process (pytest, backends)."""
    if isinstance(obj, (types.FunctionType, types.CoroutineType)):
        code = obj.__code__ if isinstance(obj, types.FunctionType) else obj.cr_code
        return obj.__qualname__ if PACKAGE in code.co_filename else None
    if isinstance(obj, types.FrameType):
        code = obj.f_code
        return getattr(code, "co_qualname", code.co_name) if PACKAGE in code.co_filename else None
    module = getattr(type(obj), "__module__", "") or ""
    return type(obj).__qualname__ if module.startswith(PACKAGE) else None


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Turn the collector off and make it keep what it finds, so a test can look."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_proxied_and_mirrored_requests_leave_no_cyclic_garbage(
    tmp_path: Path, saved_garbage: list[object]
) -> None:
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )

        async def scenario() -> None:
            await call_gateway(app, "GET", b"")  # warm-up: the client and its pool are created
            gc.collect()
            saved_garbage.clear()
            for i in range(30):
                sent = await call_gateway(app, "POST" if i % 2 else "GET", b"x" * 1000)
                assert sent[0]["status"] == 200
            assert await app.mirror_pool.wait_idle(10)
            await asyncio.sleep(0.1)  # the grace timers of the last requests

        asyncio.run(scenario())
        assert copy.count == 31 and main.count == 31  # every request served and copied
    gc.collect()
    cyclic = sorted({name for obj in saved_garbage if (name := _ours(obj)) is not None})
    assert cyclic == [], f"reference cycles through: {cyclic}"


class _ServerCycle:
    """What an ASGI server keeps per request, as uvicorn's ``RequestResponseCycle``: the
    scope, and the ``receive`` and ``send`` it hands out are its own bound methods. A
    gateway object kept in the scope that held those would close a cycle."""

    def __init__(self, host: bytes, method: str, body: bytes) -> None:
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": "/p", "raw_path": b"/p",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "headers": [(b"host", host), (b"content-length", str(len(body)).encode())],
            "server": ("127.0.0.1", 80),
        }  # fmt: skip
        self.pending = [{"type": "http.request", "body": body, "more_body": False}]
        self.sent: list[Any] = []

    async def receive(self) -> Any:
        if self.pending:
            return self.pending.pop()
        await asyncio.sleep(3600)  # the client stays until the test ends
        raise AssertionError("unreachable")

    async def send(self, message: Any) -> None:
        self.sent.append(message)


def test_observed_requests_leave_no_cyclic_garbage(
    tmp_path: Path, saved_garbage: list[object]
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "m.yaml").write_text(MIRROR_100)
    log = tmp_path / "access.log"
    observability = ObservabilityOptions(
        metrics=True, access_log=True, access_log_file=str(log), add_routers_labels=True
    )
    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path / "config",
            backends={"default/main:80": main.url, "default/copy:80": copy.url},
            observability=observability,
        )

        async def scenario() -> None:
            await call_gateway(app, "GET", b"")  # warm-up: the client and its pool are created
            # Free the start-up's garbage for good (kept, its cycles would be found again).
            gc.set_debug(0)
            gc.collect()
            saved_garbage.clear()
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            for i in range(30):
                host = b"nowhere.test" if i % 3 == 2 else b"m.test"  # routed and unrouted
                cycle = _ServerCycle(host, "POST" if i % 2 else "GET", b"x" * 100)
                await app(cycle.scope, cycle.receive, cycle.send)
                assert cycle.sent[0]["status"] == (404 if host == b"nowhere.test" else 200)
            assert await app.mirror_pool.wait_idle(10)
            await asyncio.sleep(0.1)  # the grace timers of the last requests

        asyncio.run(scenario())
        assert app.metrics is not None
        assert sum(r.count for r in app.metrics.entry_rows.values()) == 31
        assert app.access_log is not None
        app.access_log.close()
    gc.collect()
    cyclic = sorted({name for obj in saved_garbage if (name := _ours(obj)) is not None})
    assert cyclic == [], f"reference cycles through: {cyclic}"
