"""A real Prometheus scrapes ``serve --admin-port``; Flagger's Traefik queries
(``pkg/metrics/observers/traefik.go``, v1.44.0) return what the traffic implies.

The canary leaf has two servers, one answering 500: half of the canary's requests fail,
in lockstep with the successes. ``rate()`` extrapolates each series from its own first
and last samples, so the success rate is exactly the ratio of the increases only when the
200 and the 500 series have the same sample times: both exist (one request each) before
Prometheus starts, so its first scrape sees both, and the rate is 50 % exactly. Every
canary answer takes 150 ms: all of them fall in the bucket (0.1, 0.3], so the P99 is
exactly Prometheus's interpolation in it, 298 ms.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.runner import (
    BackendSpec,
    _recording_backends,
    _send_all,
    repeat,
    wait_quiet,
)
from tests.support.gateway import serve_cli
from tests.support.traefik import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed: apt-get install prometheus"
)

SCENARIO = Path(__file__).with_name("scenario.yaml")
BACKENDS: dict[str, Any] = {
    "default/app-primary:80": "primary",
    "default/app-canary:80": [
        BackendSpec("canary-ok", delay=0.15),
        BackendSpec("canary-bad", status=500, delay=0.15),
    ],
    "default/app-v1:80": "v1",
    "default/app-v2:80": "v2",
    "default/app-v3:80": "v3",
}
# Flagger's queries with namespace=default, target=app, interval=1m.
SELECTOR = 'service=~"default-app-canary-[0-9a-zA-Z-]+@kubernetescrd"'
CANARY = 'service="default-app-canary-'
SUCCESS_RATE = (
    "sum(rate(traefik_service_request_duration_seconds_bucket{"
    + SELECTOR
    + ', code!~"5..", le="+Inf"}[1m])) / sum(rate(traefik_service_request_duration_seconds_bucket{'
    + SELECTOR
    + ', le="+Inf"}[1m])) * 100'
)
DURATION_P99 = (
    "histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{"
    + SELECTOR
    + "}[1m])) by (le)) * 1000"
)


@contextlib.contextmanager
def prometheus(tmp_path: Path, admin: int) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping the admin port ``admin`` every second; yields
    its URL once it is ready."""
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: gateway\n    static_configs: [{{targets: ['127.0.0.1:{admin}']}}]\n"
    )
    assert PROMETHEUS is not None
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{web}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "prometheus.log").read_text()[-3000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def query(url: str, promql: str) -> float | None:
    answer = httpx.get(f"{url}/api/v1/query?query={urllib.parse.quote(promql)}", timeout=5).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _next_scrape(url: str) -> None:
    """Wait until Prometheus has scraped the gateway once more: the traffic spreads
    over several scrapes, as a canary's does."""
    promql = 'timestamp(up{job="gateway"})'
    before = query(url, promql)
    deadline = time.monotonic() + 10
    while query(url, promql) == before:
        assert time.monotonic() < deadline, "Prometheus scraped no more"
        time.sleep(0.1)  # poll interval of a bounded wait on a condition


def test_flagger_success_rate_and_p99_queries_read_the_canary(tmp_path: Path) -> None:
    admin = free_port()
    total = "sum(traefik_service_requests_total{" + SELECTOR + "})"
    with _recording_backends(BACKENDS) as (by_name, urls):
        single = {k: v for k, v in urls.items() if isinstance(v, str)}
        several = [
            arg
            for key, value in urls.items()
            if not isinstance(value, str)
            for url_ in value
            for arg in ("--backend", f"{key}={url_}")
        ]
        args = ("--admin-port", str(admin), *several)
        backends = list(by_name.values())
        ok, bad = by_name["canary-ok"], by_name["canary-bad"]
        with serve_cli([str(SCENARIO)], single, *args) as base_url:
            # One success and one failure before Prometheus starts (weights 3:1 over 8,
            # then 1:1): its first scrape sees the 200 and the 500 series together.
            _send_all(base_url, repeat(8, "canary.test"), backends=by_name)
            wait_quiet(backends, quiet=0.3, cap=5)
            assert (ok.count, bad.count) == (1, 1)
            assert _canary_requests_by_code(admin) == {"200": 1.0, "500": 1.0}
            with prometheus(tmp_path, admin) as url:
                _wait_for(url, total, 2)  # the first sample of both: 1 and 1
                actions = {i: [lambda _: _next_scrape(url)] for i in range(0, 80, 16)}
                _send_all(base_url, repeat(80, "canary.test"), actions=actions, backends=by_name)
                wait_quiet(backends, quiet=0.3, cap=5)
                assert (ok.count, bad.count) == (11, 11)  # 10 and 10 more: 3:1 over 80, 1:1
                _wait_for(url, total, 22)
                rate = query(url, SUCCESS_RATE)
                p99 = query(url, DURATION_P99)
    # Both series grew by 10 over the same sample times: 10 / (10 + 10).
    assert rate == pytest.approx(50.0, abs=1e-9), rate
    assert p99 is not None and p99 == pytest.approx(298.0, abs=0.5), p99
    assert json.dumps(rate)  # a number Flagger can compare with thresholdRange


def _wait_for(url: str, promql: str, value: float) -> None:
    """Wait until Prometheus has scraped what makes ``promql`` equal ``value``."""
    deadline = time.monotonic() + 15
    while query(url, promql) != value and time.monotonic() < deadline:
        time.sleep(0.2)  # poll interval of a bounded wait on a condition
    assert query(url, promql) == value


def _canary_requests_by_code(admin: int) -> dict[str, float]:
    """The canary's request counters by code, as the admin port exposes them now."""
    text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        labels, _, value = line.rpartition(" ")
        code = re.search(r'code="([0-9]+)"', labels)
        if labels.startswith("traefik_service_requests_total{") and code and CANARY in labels:
            counts[code[1]] = counts.get(code[1], 0.0) + float(value)
    return counts
