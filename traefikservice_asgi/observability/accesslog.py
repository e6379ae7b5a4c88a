"""Traefik's access log: Common Log Format with Traefik's three extra fields, or JSON
with Traefik's field names (``pkg/middlewares/accesslog``).

Lines are formatted on the event loop (cheap) and written by one thread of their own,
through a queue: a slow disk or a blocked pipe never blocks the loop. A client that
went away before any answer is logged ``499``.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING

from starlette.types import Scope

if TYPE_CHECKING:
    from .observe import LoggedExchange

__all__ = ["AccessLog"]

_STOP = object()
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _rfc3339_nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC time (trailing zeros of the fraction dropped)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    fraction = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


class AccessLog:
    """Writes one line per request, in ``fmt`` (``common`` or ``json``), to ``path``
    (None: standard output), from a writer thread."""

    def __init__(self, fmt: str = "common", path: str | None = None, entry_point: str = "web"):
        self.format = fmt
        self.path = path
        self.entry_point = entry_point
        self.count = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write, name="traefikservice-asgi-access-log", daemon=True
                )
                self._thread.start()

    def _write(self) -> None:
        stream: IO[str]
        stream = open(self.path, "a", encoding="utf-8") if self.path else sys.stdout  # noqa: SIM115
        try:
            while True:
                line = self._queue.get()
                if line is _STOP:
                    break
                batch = [line]
                while True:  # take what is already waiting, write it at once
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._queue.put(_STOP)
                        break
                    batch.append(more)
                stream.write("".join(str(b) for b in batch))
                stream.flush()
        finally:
            if stream is not sys.stdout:
                stream.close()

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, then stop the writer thread."""
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
            self._thread = None

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until the queued lines are written (for tests)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.01)

    def log(self, scope: Scope, exchange: LoggedExchange, seconds: float) -> None:
        """Queue the line of one finished request."""
        if self._thread is None:
            self._start()
        self.count += 1
        line = (
            self._json(scope, exchange, seconds)
            if self.format == "json"
            else (self._common(scope, exchange, seconds))
        )
        self._queue.put(line + "\n")

    # -- formats ------------------------------------------------------------------------

    @staticmethod
    def _host(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"host":
                return str(value.decode("latin-1"))
        server = scope.get("server")
        return f"{server[0]}:{server[1]}" if server else ""

    @staticmethod
    def _path(scope: Scope) -> str:
        raw = scope.get("raw_path") or scope.get("path", "/").encode()
        query = scope.get("query_string", b"")
        target = raw + b"?" + query if query else raw
        return str(target.decode("latin-1"))

    def _json(self, scope: Scope, ex: LoggedExchange, seconds: float) -> str:
        client = scope.get("client") or ("", 0)
        addr = self._host(scope)
        host, _, port = (
            addr.rpartition(":") if addr.rpartition(":")[2].isdigit() else (addr, "", "")
        )
        duration = int(seconds * 1e9)
        start = _rfc3339_nano(ex.start_wall)
        http_version = scope.get("http_version", "1.1")
        record: dict[str, object] = {
            "ClientAddr": f"{client[0]}:{client[1]}",
            "ClientHost": client[0],
            "ClientPort": str(client[1]),
            "ClientUsername": "-",
            "DownstreamContentSize": ex.response_bytes,
            "DownstreamStatus": ex.status,
            "Duration": duration,
        }
        if ex.service is None:
            record["GzipRatio"] = 0
        origin_duration = int(ex.origin_duration * 1e9)
        record.update(
            {
                "OriginContentSize": ex.origin_size,
                "OriginDuration": origin_duration,
                "OriginStatus": ex.origin_status,
                "Overhead": duration - origin_duration,
                "RequestAddr": addr,
                "RequestContentSize": ex.request_bytes,
                "RequestCount": self.count,
                "RequestHost": host or addr,
                "RequestMethod": scope.get("method", "GET"),
                "RequestPath": self._path(scope),
                "RequestPort": port or "-",
                "RequestProtocol": f"HTTP/{http_version}",
                "RequestScheme": _SCHEMES.get(scope.get("scheme", "http"), "http"),
                "RetryAttempts": 0,
            }
        )
        if ex.router is not None:
            record["RouterName"] = ex.router[0]
        if ex.service is not None and ex.url is not None:
            record["ServiceAddr"] = ex.url.split("://", 1)[-1].split("/", 1)[0]
            record["ServiceName"] = ex.service
            record["ServiceURL"] = ex.url
        record["StartLocal"] = start
        record["StartUTC"] = start
        record["entryPointName"] = self.entry_point
        record["level"] = "info"
        record["msg"] = ""
        record["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return json.dumps(record, separators=(",", ":"))

    def _common(self, scope: Scope, ex: LoggedExchange, seconds: float) -> str:
        client = scope.get("client") or ("-", 0)
        when = datetime.fromtimestamp(ex.start_wall / 1e9, timezone.utc).strftime(
            "%d/%b/%Y:%H:%M:%S +0000"
        )
        request = (
            f"{scope.get('method', 'GET')} {self._path(scope)} "
            f"HTTP/{scope.get('http_version', '1.1')}"
        )
        router = ex.router[0] if ex.router is not None else "-"
        url = ex.url if ex.url is not None and ex.service is not None else "-"
        return (
            f'{client[0]} - - [{when}] "{request}" {ex.status} {ex.response_bytes} '
            f'"-" "-" {self.count} "{router}" "{url}" {int(seconds * 1000)}ms'
        )
