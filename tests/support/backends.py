"""A real HTTP/1.1 backend on 127.0.0.1 that records every request it receives.

It plays the walkthrough's nginx pods (``Hello app-v1``) for the gateway and for the Traefik
oracle alike, and lets a test see exactly what a proxy forwarded: method, raw path and query,
headers in arrival order with their original case, and the body.

The server is a small asyncio HTTP/1.1 implementation running in its own thread with its own
event loop, on a socket bound before the thread starts (so ``port`` is known at once). It
supports keep-alive, ``Content-Length`` and chunked request bodies (trailers are read and
dropped), ``Expect: 100-continue`` and ``Connection: close``. A request whose connection
closes before the whole body arrived is still recorded, with ``complete=False`` (this is
what Traefik's ``mirrorBody: false`` produces).

    with RecordingBackend("app-v1") as app_v1:
        httpx.get(app_v1.url)               # -> 200 "Hello app-v1\\n"
        app_v1.wait_for_requests(1)
        assert app_v1.requests[0].path == "/"
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType

__all__ = ["BackendError", "RecordedRequest", "RecordingBackend"]

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0
_MAX_HEAD = 1 << 20  # 1 MiB of request line + headers
_NO_BODY_STATUSES = frozenset({204, 304})


class BackendError(RuntimeError):
    """The backend could not start, or a wait on it timed out."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the backend received it."""

    method: str
    path: str
    """The raw path as sent on the request line (still percent-encoded), without the query."""
    query: str
    """The raw query string (after ``?``, not decoded); ``""`` when there was none."""
    headers: tuple[tuple[str, str], ...]
    """Every header line in arrival order, names in their original case."""
    body: bytes
    http_version: str = "HTTP/1.1"
    complete: bool = True
    """False when the connection closed before the announced body had fully arrived."""
    chunked: bool = False
    """True when the body came with ``Transfer-Encoding: chunked``."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def target(self) -> str:
        """The request target as sent: path plus ``?query`` when there was one."""
        return f"{self.path}?{self.query}" if self.query else self.path


class _ConnectionClosed(Exception):
    """The peer closed the connection in the middle of a request."""

    def __init__(self, partial_body: bytes) -> None:
        super().__init__("connection closed before the request body was complete")
        self.partial_body = partial_body


class RecordingBackend:
    """A recording HTTP/1.1 server on 127.0.0.1:<ephemeral port>, run in its own thread.

    ``status``, ``body``, ``delay``, ``headers`` (a None value leaves out that default
    header: ``("Content-Type", None)``) and ``chunked`` (the body sent with
    ``Transfer-Encoding: chunked``, one chunk) are read on every request, so a test may
    change them between requests (e.g. ``backend.status = 500``). ``host`` and ``port`` pick
    another loopback address or a fixed port (e.g. for EndpointSlice addresses in a YAML).
    """

    def __init__(
        self,
        name: str,
        *,
        status: int = 200,
        body: bytes | None = None,
        delay: float = 0,
        headers: list[tuple[str, str | None]] | None = None,
        chunked: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.name = name
        self.host = host
        self._wanted_port = port
        self.status = status
        self.body = body if body is not None else f"Hello {name}\n".encode()
        self.delay = delay
        self.chunked = chunked
        self.headers: list[tuple[str, str | None]] = list(headers or [])
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- public API -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise BackendError(f"backend {self.name!r} is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def count(self) -> int:
        with self._cond:
            return len(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests were recorded; return them. Raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BackendError(
                        f"backend {self.name!r}: expected at least {n} request(s) within "
                        f"{timeout:.1f}s, got {len(self._requests)}"
                    )
                self._cond.wait(remaining)
            return list(self._requests)

    def start(self) -> RecordingBackend:
        if self._thread is not None:
            raise BackendError(f"backend {self.name!r} is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._wanted_port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, name=f"RecordingBackend({self.name})", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._error is not None:
            self.stop()
            raise BackendError(f"backend {self.name!r} failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
        thread.join(_STOP_TIMEOUT)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if thread.is_alive():
            raise BackendError(f"backend {self.name!r} did not stop within {_STOP_TIMEOUT}s")

    def __enter__(self) -> RecordingBackend:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else "not started"
        return f"<RecordingBackend {self.name!r} {where}>"

    # -- server thread --------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() / stop()
            self._error = exc
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _serve(self) -> None:
        assert self._sock is not None
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, sock=self._sock, limit=_MAX_HEAD)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=_STOP_TIMEOUT)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                await self._send_simple(writer, 400, b"incomplete request head\n")
            return False
        lines = head[:-4].decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLFs between requests
            lines.pop(0)
        try:
            method, target, version = lines[0].split(" ")
        except (IndexError, ValueError):
            await self._send_simple(writer, 400, b"bad request line\n")
            return False
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                await self._send_simple(writer, 400, b"bad header line\n")
                return False
            headers.append((name, value.strip(" \t")))
        path, _, query = target.partition("?")
        lowered = [(k.lower(), v) for k, v in headers]
        transfer_encoding = ",".join(v for k, v in lowered if k == "transfer-encoding").lower()
        chunked = "chunked" in transfer_encoding
        lengths = {v.strip() for k, v in lowered if k == "content-length"}
        connection = {
            token.strip().lower() for k, v in lowered if k == "connection" for token in v.split(",")
        }
        keep_alive = (
            "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        )
        expects_continue = any(k == "expect" and v.lower() == "100-continue" for k, v in lowered)
        if expects_continue and (chunked or lengths - {"0"}):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

        complete = True
        try:
            if chunked:
                body = await self._read_chunked(reader)
            elif lengths:
                if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                    await self._send_simple(writer, 400, b"bad content-length\n")
                    return False
                body = await self._read_exactly(reader, int(next(iter(lengths))))
            else:
                body = b""
        except _ConnectionClosed as exc:
            body, complete, keep_alive = exc.partial_body, False, False

        self._record(
            RecordedRequest(
                method=method,
                path=path,
                query=query,
                headers=tuple(headers),
                body=body,
                http_version=version,
                complete=complete,
                chunked=chunked,
            )
        )
        if not complete:
            return False
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        await self._send_response(writer, method, keep_alive)
        return keep_alive

    @staticmethod
    async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise _ConnectionClosed(exc.partial) from None

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        try:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    return bytes(body)
                body += await reader.readexactly(size)
                await reader.readexactly(2)  # CRLF after the chunk data
        except asyncio.IncompleteReadError as exc:
            raise _ConnectionClosed(bytes(body) + exc.partial) from None

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    async def _send_response(
        self, writer: asyncio.StreamWriter, method: str, keep_alive: bool
    ) -> None:
        status, body, extra = self.status, self.body, list(self.headers)
        extra_names = {name.lower() for name, _ in extra}
        headers: list[tuple[str, str]] = [("Date", formatdate(usegmt=True))]
        if "content-type" not in extra_names:
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        if "x-backend" not in extra_names:
            headers.append(("X-Backend", self.name))
        headers.extend((k, v) for k, v in extra if v is not None)  # None: left out
        if status in _NO_BODY_STATUSES:
            body = b""
        elif self.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
            if method != "HEAD":
                body = (
                    f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b""
                ) + b"0\r\n\r\n"
        else:
            headers.append(("Content-Length", str(len(body))))
        if method == "HEAD":
            body = b""
        if not keep_alive:
            headers.append(("Connection", "close"))
        writer.write(_status_line(status) + _header_block(headers) + body)
        await writer.drain()

    @staticmethod
    async def _send_simple(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        headers = [("Content-Length", str(len(body))), ("Connection", "close")]
        writer.write(_status_line(status) + _header_block(headers) + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


def _header_block(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers).encode("latin-1") + b"\r\n"
