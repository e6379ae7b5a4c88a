"""The loop-lag sampler sees a callback that blocks the loop, and nothing when the loop
is idle; the reloader logs each reload's longest stall only when asked to."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from traefikservice_asgi import create_app, load_config_text
from traefikservice_asgi.observability.looplag import ENV_LOOP_LAG, LoopLag

CONFIG = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes: [{match: Host(`a.test`), kind: Rule, services: [{name: a, port: 80}]}]
"""


def test_a_blocking_callback_is_measured_as_a_stall() -> None:
    async def scenario() -> tuple[float, float]:
        lag = LoopLag(interval=0.005)
        lag.start()
        await asyncio.sleep(0.05)
        idle = lag.take()
        time.sleep(0.06)  # noqa: ASYNC251 - blocking the loop is what is measured
        await asyncio.sleep(0.02)
        blocked = lag.take()
        lag.stop()
        return idle, blocked

    idle, blocked = asyncio.run(scenario())
    assert blocked >= 0.05
    assert idle < blocked


def test_each_reload_logs_its_longest_stall_when_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV_LOOP_LAG, "1")
    backends = {"default/a:80": "http://127.0.0.1:9"}
    app = create_app(load_config_text(CONFIG, backends=backends))
    changed = CONFIG.replace("a.test", "b.test")

    async def scenario() -> None:
        app.reloader.start(watch=False, throttle=0.1)
        await app.reload(load_config_text(changed, backends=backends))
        deadline = time.monotonic() + 5
        while "longest stall" not in caplog.text and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await app.aclose()

    with caplog.at_level(logging.INFO, logger="traefikservice_asgi.reload"):
        asyncio.run(scenario())
    assert "event loop: longest stall" in caplog.text
    assert "during the reload (api), " in caplog.text
    assert "ms in the second after" in caplog.text
