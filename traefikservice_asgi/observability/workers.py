"""One scrape for ``serve --workers N --admin-port``: the sum over every worker.

Each worker keeps its counters in plain rows, as a single process does (nothing shared
on the hot path), and writes a snapshot of them every second (and at shutdown) to
``<dir>/<pid>.json``, replaced atomically. The parent process serves the admin port and,
on each scrape, reads every snapshot and adds them up. A scrape is therefore at most
one second behind the workers; counters never go back, so ``rate()`` is unaffected. A
worker that exits leaves its last snapshot, so its counts are never lost; gauges
(``traefik_service_server_up``) are the most recent worker's.

Chosen over ``prometheus_client``'s multiprocess mode, which memory-maps a file per
metric and process and costs 2-3x per update on the hot path
(docs/reference/metrics.md): here the hot path is the single-process one, and the cost
is one small file write per worker per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics, MetricsCollector, Row
from .options import ObservabilityOptions

__all__ = [
    "ENV_METRICS_DIR",
    "MergedCollector",
    "MergedMetrics",
    "SnapshotWriter",
    "WithSnapshots",
    "snapshot",
]

ENV_METRICS_DIR = "TRAEFIKSERVICE_ASGI_METRICS_DIR"
"""Where the workers write their snapshots (set by ``serve`` for its workers)."""

SNAPSHOT_INTERVAL = 1.0


def _row(row: Row) -> list[Any]:
    return [row.count, row.sum, list(row.buckets), row.request_bytes, row.response_bytes]


def snapshot(metrics: Metrics) -> dict[str, Any]:
    """The counters of ``metrics`` as JSON-able data."""
    return {
        "entry": [[*key, *_row(r)] for key, r in metrics.entry_rows.items()],
        "routers": [
            [*labels, *key, *_row(r)]
            for labels, group in metrics.router_rows.items()
            for key, r in group.items()
        ],
        "services": [
            [name, *key, *_row(r)]
            for name, stats in metrics.services.items()
            for key, r in stats.rows.items()
        ],
        "server_up": [[s, u, v] for (s, u), v in metrics.server_up.items()],
        "reloads": metrics.reloads,
        "last_reload_success": metrics.last_reload_success,
    }


class SnapshotWriter:
    """Writes one worker's snapshot every ``interval`` seconds, on its event loop."""

    def __init__(
        self, metrics: Metrics, directory: str | Path, interval: float = SNAPSHOT_INTERVAL
    ) -> None:
        self.metrics = metrics
        self.path = Path(directory) / f"{os.getpid()}.json"
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self.write()
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot(self.metrics)))
        os.replace(temporary, self.path)
        # A worker's snapshot is its scrape: what a reload removed goes after it.
        self.metrics.outdated.delete(self.metrics)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.write()


class WithSnapshots:
    """A worker's app: ``app`` with its snapshots started and stopped by the lifespan."""

    def __init__(self, app: ASGIApp, writer: SnapshotWriter) -> None:
        self.app = app
        self.writer = writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def sender(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.writer.start()
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.writer.stop()
            await send(message)

        await self.app(scope, receive, sender)


class MergedMetrics(Metrics):
    """The sum of every worker's snapshot in ``directory``, read by :meth:`load`."""

    def __init__(self, options: ObservabilityOptions, directory: str | Path) -> None:
        super().__init__(options)
        self.directory = Path(directory)

    def load(self) -> None:
        self.entry_rows, self.router_rows, self.services = {}, {}, {}
        self.server_up = {}
        reloads, last, newest = 2, self.last_reload_success, -1.0
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                mtime = path.stat().st_mtime
                data = json.loads(path.read_text())
                for entry in data["entry"]:
                    self._add(self.entry_rows, entry[:3], entry[3:])
                for entry in data["routers"]:
                    group = self.router_rows.setdefault((entry[0], entry[1]), {})
                    self._add(group, entry[2:5], entry[5:])
                for entry in data["services"]:
                    self._add(self.service(entry[0]).rows, entry[1:4], entry[4:])
                reloads = max(reloads, data["reloads"])
                if mtime > newest:  # gauges: the most recent worker's
                    newest = mtime
                    last = data["last_reload_success"]
                    self.server_up = {(s, u): v for s, u, v in data["server_up"]}
        self.reloads, self.last_reload_success = reloads, last

    def _add(self, rows: dict[Any, Row], key: list[Any], values: list[Any]) -> None:
        status, method, protocol = key
        row = rows.get((status, method, protocol))
        if row is None:
            row = rows[(status, method, protocol)] = Row(self.size)
        _, total, buckets, request_bytes, response_bytes = values  # (the count: the buckets')
        row.sum += total
        row.count += sum(buckets[: self.size])
        for index, n in enumerate(buckets[1 : self.size]):
            row.over[index] += n
        row.request_bytes += request_bytes
        row.response_bytes += response_bytes


class MergedCollector(MetricsCollector):
    """Reads every worker's snapshot on each scrape."""

    metrics: MergedMetrics

    def collect(self) -> Iterator[Any]:
        self.metrics.load()
        return super().collect()
