"""The entry point's and the servers' recording (observe.py): each request counted in
the row of its own labels, however the labels of consecutive requests alternate."""

from __future__ import annotations

import time
from typing import Any

from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.observability import ObservabilityOptions
from traefikservice_asgi.observability.metrics import Metrics
from traefikservice_asgi.observability.observe import Observer, ServerRecorder

SEQUENCE = [(200, "GET"), (503, "GET"), (200, "GET"), (200, "PUT"), (200, "GET"), (0, "GET")]
EXPECTED = {
    (200, "GET", "http"): 3,
    (503, "GET", "http"): 1,
    (200, "PUT", "http"): 1,
    (499, "GET", "http"): 1,  # nothing answered: the client went away
}


def _scope(method: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/", "headers": [(b"host", b"a.test")]}


def test_entry_point_counts_alternating_labels_each_in_its_row() -> None:
    metrics = Metrics(ObservabilityOptions(metrics=True))
    observer = Observer(metrics, None)
    for status, method in SEQUENCE:
        scope = _scope(method)
        exchange = observer.begin(scope, prepare(scope, check_host=False))
        if status:
            exchange.status = status
            exchange.response_bytes = 5
        observer.end(scope, exchange)
    assert {k: r.count for k, r in metrics.entry_rows.items()} == EXPECTED
    assert metrics.entry_rows[(200, "GET", "http")].response_bytes == 15


def test_server_counts_alternating_labels_each_in_its_row() -> None:
    metrics = Metrics(ObservabilityOptions(metrics=True))
    stats = metrics.service("s@kubernetescrd")
    recorder = ServerRecorder("http://127.0.0.1:1", stats, metrics)
    for status, method in SEQUENCE:
        scope = _scope(method)
        recorder.record(scope, prepare(scope, check_host=False), time.perf_counter(), status, 5, 2)
    assert {k: r.count for k, r in stats.rows.items()} == EXPECTED
    assert stats.rows[(200, "GET", "http")].request_bytes == 6
