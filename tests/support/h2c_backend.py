"""A real HTTP/2 cleartext backend on 127.0.0.1 that records every request it receives.

The h2c twin of :class:`~tests.support.backends.RecordingBackend`, with the same API
(``status``, ``body``, ``delay``, ``headers``, ``requests``, ``wait_for_requests``...): it
plays an ``h2c://`` server for the gateway and for the Traefik oracle alike. Like Go's
server with ``Protocols.SetUnencryptedHTTP2`` plus HTTP/1 (the backend of Traefik's own
``smart_roundtripper_test.go``), one port speaks both: a connection that opens with the
HTTP/2 preface (prior knowledge, no ``Upgrade: h2c``) is served in HTTP/2 on the
``h2`` state machine; any other connection in HTTP/1.1, by ``RecordingBackend``'s code.

An HTTP/2 request is recorded with ``http_version="HTTP/2.0"`` and its header block as it
arrived: the pseudo-headers first (``:authority``, ``:method``, ``:path``, ``:scheme``, in
the client's order), then the others, nothing combined or renamed. A stream the client
resets before its body ended is recorded with ``complete=False``; every reset the client
sent is in :attr:`H2CRecordingBackend.resets`.

``responder`` replaces the canned answer for tests that need another shape (a streamed
body, a reset in the middle of it):

    async def slow(request: RecordedRequest, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/plain")])
        await reply.send(b"first ")
        await asyncio.sleep(1)
        await reply.send(b"second", end=True)

    with H2CRecordingBackend("grpc-ish", responder=slow) as backend: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from tests.support.backends import RecordedRequest, RecordingBackend

__all__ = ["PREFACE", "H2CRecordingBackend", "Reply", "Responder"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The HTTP/2 client connection preface (RFC 9113 §3.4)."""

_READ_SIZE = 64 * 1024
_MAX_HEAD = 1 << 20  # as RecordingBackend: 1 MiB of request line + headers
_NO_BODY_STATUSES = frozenset({204, 304})


class Reply:
    """The answer to one HTTP/2 request, sent as the responder writes it, within the
    client's flow-control window."""

    def __init__(self, session: _Session, stream_id: int) -> None:
        self._session = session
        self.stream_id = stream_id

    async def start(
        self, status: int, headers: Sequence[tuple[str, str]] = (), *, end: bool = False
    ) -> None:
        block = [(b":status", str(status).encode())]
        block += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self._session.conn.send_headers(self.stream_id, block, end_stream=end)
        await self._session.flush()

    async def start_raw(self, block: Sequence[tuple[bytes, bytes]], *, end: bool = False) -> None:
        """Send ``block`` as a HEADERS frame exactly as given: no lower-casing, no
        connection headers stripped, no check that it is a valid response (or trailer)
        block. For tests of what a client does with a malformed one."""
        conn = self._session.conn
        config = conn.config
        saved = config.validate_outbound_headers, config.normalize_outbound_headers
        config.validate_outbound_headers = config.normalize_outbound_headers = False
        try:
            conn.send_headers(self.stream_id, list(block), end_stream=end)
        finally:
            config.validate_outbound_headers, config.normalize_outbound_headers = saved
        await self._session.flush()

    async def send(self, data: bytes, *, end: bool = False) -> None:
        session = self._session
        while data:
            window = min(
                session.conn.local_flow_control_window(self.stream_id),
                session.conn.max_outbound_frame_size,
            )
            if window <= 0:
                await session.window_changed()
                continue
            session.conn.send_data(self.stream_id, data[:window])
            data = data[window:]
            await session.flush()
        if end:
            session.conn.end_stream(self.stream_id)
            await session.flush()

    async def reset(self, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        """Abort the stream with ``RST_STREAM``."""
        self._session.conn.reset_stream(self.stream_id, code)
        await self._session.flush()


Responder = Callable[[RecordedRequest, Reply], Awaitable[None]]


class _Stream:
    __slots__ = ("body", "complete", "headers", "recorded")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body = bytearray()
        self.complete = False
        self.recorded = False


class _Session:
    """One HTTP/2 connection, from the preface to the close."""

    def __init__(
        self,
        backend: H2CRecordingBackend,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.backend = backend
        self.reader = reader
        self.writer = writer
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, normalize_inbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: backend.max_concurrent_streams
            },
        )
        self.streams: dict[int, _Stream] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._window = asyncio.Event()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def window_changed(self) -> None:
        self._window.clear()
        await self._window.wait()

    async def run(self, first: bytes) -> None:
        self.conn.initiate_connection()
        await self.flush()
        data = first
        try:
            while data:
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    await self.flush()  # the GOAWAY h2 queued
                    return
                for event in events:
                    self._handle(event)
                await self.flush()
                data = await self.reader.read(_READ_SIZE)
        finally:
            for task in self.tasks.values():
                task.cancel()
            if self.tasks:
                await asyncio.wait(list(self.tasks.values()), timeout=5)
            for stream in self.streams.values():
                self._record(stream)

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            assert event.stream_id is not None and event.headers is not None
            self.streams[event.stream_id] = _Stream(list(event.headers))  # type: ignore[arg-type]
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.complete = True
                request = self._record(stream)
                task = asyncio.get_running_loop().create_task(
                    self._respond(request, event.stream_id)
                )
                self.tasks[event.stream_id] = task
                task.add_done_callback(lambda _, sid=event.stream_id: self.tasks.pop(sid, None))
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            self.backend._note_reset(event.stream_id, int(event.error_code or 0))
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._record(stream)
            task = self.tasks.get(event.stream_id)
            if task is not None:
                task.cancel()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window.set()

    def _record(self, stream: _Stream) -> RecordedRequest:
        pseudo = dict(stream.headers)
        path, _, query = pseudo.get(b":path", b"").decode("latin-1").partition("?")
        request = RecordedRequest(
            method=pseudo.get(b":method", b"").decode("latin-1"),
            path=path,
            query=query,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in stream.headers),
            body=bytes(stream.body),
            http_version="HTTP/2.0",
            complete=stream.complete,
        )
        if not stream.recorded:
            stream.recorded = True
            self.backend._record(request)
        return request

    async def _respond(self, request: RecordedRequest, stream_id: int) -> None:
        backend = self.backend
        reply = Reply(self, stream_id)
        with contextlib.suppress(h2.exceptions.StreamClosedError, ConnectionError):
            if backend.responder is not None:
                await backend.responder(request, reply)
                return
            if backend.delay > 0:
                await asyncio.sleep(backend.delay)
            status, body, extra = backend.status, backend.body, list(backend.headers)
            names = {name.lower() for name, _ in extra}
            headers: list[tuple[str, str]] = []
            if "content-type" not in names:
                headers.append(("content-type", "text/plain; charset=utf-8"))
            if "x-backend" not in names:
                headers.append(("x-backend", backend.name))
            headers.extend(extra)
            if status in _NO_BODY_STATUSES or request.method == "HEAD":
                if status not in _NO_BODY_STATUSES:
                    headers.append(("content-length", str(len(body))))
                await reply.start(status, headers, end=True)
                return
            headers.append(("content-length", str(len(body))))
            await reply.start(status, headers, end=not body)
            if body:
                await reply.send(body, end=True)


class H2CRecordingBackend(RecordingBackend):
    """A recording server on 127.0.0.1 speaking h2c (prior knowledge) and HTTP/1.1.

    ``max_concurrent_streams`` is the server's ``SETTINGS_MAX_CONCURRENT_STREAMS``;
    ``responder`` (see the module docstring) replaces the canned HTTP/2 answer.
    """

    def __init__(
        self,
        name: str,
        *,
        max_concurrent_streams: int = 100,
        responder: Responder | None = None,
        **options: object,
    ) -> None:
        super().__init__(name, **options)  # type: ignore[arg-type]
        self.max_concurrent_streams = max_concurrent_streams
        self.responder = responder
        self._counts_lock = threading.Lock()
        self._resets: list[tuple[int, int]] = []
        self._h2_connections = 0
        self._http1_connections = 0

    @property
    def resets(self) -> list[tuple[int, int]]:
        """``(stream id, error code)`` of every ``RST_STREAM`` the clients sent."""
        with self._counts_lock:
            return list(self._resets)

    @property
    def h2_connections(self) -> int:
        """Connections that opened with the HTTP/2 preface."""
        with self._counts_lock:
            return self._h2_connections

    @property
    def http1_connections(self) -> int:
        """Connections served in HTTP/1.1."""
        with self._counts_lock:
            return self._http1_connections

    def _note_reset(self, stream_id: int, code: int) -> None:
        with self._counts_lock:
            self._resets.append((stream_id, code))

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            first = b""
            while len(first) < len(PREFACE) and PREFACE.startswith(first):
                more = await reader.read(len(PREFACE) - len(first))
                if not more:
                    break
                first += more
            if first.startswith(PREFACE):
                with self._counts_lock:
                    self._h2_connections += 1
                await _Session(self, reader, writer).run(first)
            elif first:
                with self._counts_lock:
                    self._http1_connections += 1
                await self._serve_http1(first, reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_http1(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``RecordingBackend``'s HTTP/1.1, on a reader that gives back the bytes read
        while looking for the preface."""
        replayed = asyncio.StreamReader(limit=_MAX_HEAD)
        replayed.feed_data(first)

        async def pump() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(_READ_SIZE):
                    replayed.feed_data(data)
            replayed.feed_eof()

        pumping = asyncio.get_running_loop().create_task(pump())
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                while await self._one_request(replayed, writer):
                    pass
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
