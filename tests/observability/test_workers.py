"""``serve --workers 2 --admin-port``: one scrape reports the sum over both workers."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import httpx

from tests.conformance.runner import _recording_backends
from tests.support.gateway import serve_cli
from tests.support.traefik import free_port
from tests.support.wait import until
from traefikservice_asgi.observability import ObservabilityOptions
from traefikservice_asgi.observability.metrics import Metrics
from traefikservice_asgi.observability.workers import MergedMetrics, SnapshotWriter

SCENARIO = Path(__file__).with_name("scenario.yaml")
BACKENDS = {
    "default/app-primary:80": "primary",
    "default/app-canary:80": "canary",
    "default/app-v1:80": "v1",
    "default/app-v2:80": "v2",
    "default/app-v3:80": "v3",
}


def test_snapshots_of_two_workers_add_up(tmp_path: Path) -> None:
    options = ObservabilityOptions(metrics=True)
    for pid, seconds in ((1, 0.05), (2, 0.5)):
        metrics = Metrics(options)
        metrics.observe(metrics.entry_rows, (200, "GET", "http"), seconds, 3, 4)
        stats = metrics.service("s@kubernetescrd")
        metrics.observe(stats.rows, (200, "GET", "http"), seconds, 3, 4)
        writer = SnapshotWriter(metrics, tmp_path)
        writer.path = tmp_path / f"{pid}.json"
        writer.write()
    merged = MergedMetrics(options, tmp_path)
    merged.load()
    row = merged.entry_rows[(200, "GET", "http")]
    assert (row.count, row.buckets, row.request_bytes, row.response_bytes) == (
        2,
        [1, 0, 1, 0, 0],
        6,
        8,
    )
    assert merged.services["s@kubernetescrd"].rows[(200, "GET", "http")].count == 2


def entry_total(text: str) -> float:
    return sum(
        float(v)
        for v in re.findall(
            r'^traefik_entrypoint_requests_total\{code="200",[^}]*\} (\S+)$', text, re.M
        )
    )


def test_one_scrape_reports_the_sum_over_all_workers() -> None:
    admin = free_port()
    with _recording_backends(BACKENDS) as (_, urls):
        flat = {k: v for k, v in urls.items() if isinstance(v, str)}
        args = ("--workers", "2", "--admin-port", str(admin))
        with serve_cli([str(SCENARIO)], flat, *args) as base_url:
            metrics_url = f"http://127.0.0.1:{admin}/metrics"
            # Both workers write their snapshots where the parent reads them.
            started = time.time() - 30
            folders = [
                f
                for f in Path(tempfile.gettempdir()).glob("traefikservice-asgi-metrics-*")
                if f.stat().st_mtime > started
            ]
            newest = max(folders, key=lambda f: f.stat().st_mtime)
            until(lambda: len(list(newest.glob("*.json"))) >= 2, "both workers' snapshots")
            assert len(list(newest.glob("*.json"))) == 2
            for _ in range(60):  # a new connection each: the kernel spreads them
                answer = httpx.get(base_url, headers={"Host": "plain.test"}, timeout=5)
                assert answer.status_code == 200

            def total() -> float:
                try:
                    return entry_total(httpx.get(metrics_url, timeout=5).text)
                except httpx.TransportError:
                    return 0.0

            until(lambda: total() >= 60, "the 60 requests in one scrape", interval=0.2)
            assert total() == 60
