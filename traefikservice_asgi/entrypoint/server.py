"""The entry point's HTTP server: what ``serve`` does on the client side of a connection.

Traefik's entry point is a Go ``http.Server``; ``serve`` runs uvicorn. This module makes
uvicorn's HTTP/1.1 protocol behave as Traefik 3.7's entry point does where a client can
tell the difference (every behaviour measured against the real binary, see the tests in
``tests/entrypoint/test_server.py``):

* **The request head is bounded** (Go's ``MaxHeaderBytes``, 1 MiB): a request line plus
  headers longer than the limit is answered ``431 Request Header Fields Too Large`` and
  the connection closed, as Go does. Go reads ``MaxHeaderBytes + 4096`` bytes before it
  gives up, and Traefik 3.7.15 accepted 14 bytes more in every measurement; the
  allowance is :data:`HEAD_ALLOWANCE`.
* **respondingTimeouts**: ``readTimeout`` (default 60 s) runs from the first byte of a
  request (the accept for the first one) until its body is read; a head not received in
  time closes the connection silently, a body not received in time is answered Traefik's
  ``499`` (its reverse proxy's answer to a body that cannot be read). ``writeTimeout``
  (default none) runs from the end of the head until the response is written, and closes
  the connection. ``idleTimeout`` (default 180 s) is the keep-alive wait between requests.
* **Every token method is served** (``BAN``, ``get``, ``X_CUSTOM``): llhttp only knows a
  fixed list, so a connection whose request llhttp refuses for its method is handed, with
  the bytes it sent, to uvicorn's h11 protocol (:class:`TokenMethodProtocol`), which
  accepts any token. Common methods keep llhttp's speed.
* **Request trailers are dropped**, never merged into the headers.
* **An HTTP/1.0 client gets a close-delimited body** when the response has no length, as
  Go's server does, not ``Transfer-Encoding: chunked`` which HTTP/1.0 does not know.

These are ``serve``'s behaviours: :class:`~traefikservice_asgi.TraefikServiceMiddleware`
inside a user's own app runs under whatever server the user picked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

import h11
import httptools
import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from ..responses import status_line
from .listener import loop_factory
from .websocket import TunnelWebSocketProtocol

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "HEAD_ALLOWANCE",
    "EntryPointConfig",
    "EntryPointProtocol",
    "RespondingTimeouts",
    "TokenMethodProtocol",
]

DEFAULT_MAX_HEADER_BYTES = 1 << 20
"""Go's ``http.DefaultMaxHeaderBytes``, Traefik's default ``maxHeaderBytes``."""
HEAD_ALLOWANCE = 4096 + 14
"""Bytes of head read beyond ``max_header_bytes`` before answering 431: Go's
``initialReadLimitSize`` adds 4096; Traefik 3.7.15 accepts 14 more (measured)."""

TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n"
    b"431 Request Header Fields Too Large"
)
"""Go's answer, byte for byte: no Content-Length, the body ends with the connection."""
CLIENT_CLOSED = b"Content-Length: 21\r\nConnection: close\r\n\r\nClient Closed Request"
"""Traefik's answer when the request body could not be read in time, after its status
line ``HTTP/1.1 499 status code 499`` and Date."""


@dataclasses.dataclass(frozen=True, slots=True)
class RespondingTimeouts:
    """Traefik's ``entryPoints.<name>.transport.respondingTimeouts``, in seconds; ``0`` is
    no timeout (an ``idle`` of 0 uses ``read``, as Go does)."""

    read: float = 60.0
    write: float = 0.0
    idle: float = 180.0

    def __post_init__(self) -> None:
        for field in ("read", "write", "idle"):
            if getattr(self, field) < 0:
                raise ValueError(
                    f"{field} timeout must not be negative, got {getattr(self, field)}"
                )


class EntryPointConfig(uvicorn.Config):
    """uvicorn's ``Config`` with the entry point's settings; it travels to ``--workers``
    processes as the config itself does (pickled), so every worker serves alike."""

    def __init__(
        self,
        app: Any,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        timeouts: RespondingTimeouts = RespondingTimeouts(),
        **options: Any,
    ) -> None:
        if max_header_bytes < 1:
            raise ValueError(f"max_header_bytes must be positive, got {max_header_bytes}")
        idle = timeouts.idle or timeouts.read
        options.setdefault("ws", TunnelWebSocketProtocol)
        super().__init__(app, http=EntryPointProtocol, **options)
        self.timeout_keep_alive = idle or sys.maxsize  # type: ignore[assignment]
        self.max_header_bytes = max_header_bytes
        self.timeouts = timeouts
        # the fallback protocol's head limit: h11 counts the same bytes
        self.h11_max_incomplete_event_size = max_header_bytes + HEAD_ALLOWANCE

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """uvicorn's loop, with the entry point's :class:`~.listener.Listener` accepting
        connections where that loop is uvloop."""
        return loop_factory(super().get_loop_factory())


def _settings(config: uvicorn.Config) -> tuple[int, RespondingTimeouts]:
    if isinstance(config, EntryPointConfig):
        return config.max_header_bytes + HEAD_ALLOWANCE, config.timeouts
    return DEFAULT_MAX_HEADER_BYTES + HEAD_ALLOWANCE, RespondingTimeouts()


class _HeadTooLarge(Exception):
    """Raised from llhttp's headers-complete callback: the head ended past the limit."""


class _HeldHead:
    """The exchange's transport from the response head to its first body bytes: the
    head waits and goes out with them in one write, as Go's buffered writer sends a
    small answer (one system call instead of two under uvloop, which writes at once); if
    they do not come within the same step of the loop, the head goes alone at its next
    turn (:meth:`flush`), so a slow or streamed body never delays it. If uvicorn writes
    nothing (the client is gone), it stays the cycle's transport, which nothing writes
    to."""

    __slots__ = ("cycle", "head", "transport")

    def __init__(
        self, cycle: httptools_impl.RequestResponseCycle, transport: Any, head: bytes
    ) -> None:
        self.cycle, self.transport, self.head = cycle, transport, head

    def write(self, data: bytes) -> None:
        # The first body bytes: the cycle writes to its own transport from now on.
        self.cycle.transport = self.transport
        if len(data) < _JOIN_BELOW:
            self.transport.write(self.head + data)
        else:
            self.transport.writelines((self.head, data))

    def flush(self) -> None:
        """Send the head alone, unless body bytes took it already (the cycle's transport
        is then its own again)."""
        if self.cycle.transport is self:  # type: ignore[comparison-overlap]
            self.cycle.transport = self.transport
            self.transport.write(self.head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())


_ORIGIN_FORM = (b"/", b"*")
"""The first byte of a target in origin form (and ``*``); any other is absolute form."""

_JOIN_BELOW = 16384
"""Body bytes below which the head and the body are joined into one buffer (a copy)
rather than handed to the transport as two (a gathered write)."""


_uvicorn_send = httptools_impl.RequestResponseCycle.send

_LINES = {status: status_line(status) for status in range(100, 1000)}
"""Go's status line of every status a handler may write."""

_HEADER_BLOCK = re.compile(
    rb'(?:[^\x00-\x20\x7f()<>@,;:\[\]={}\\"]+: [^\x00-\x08\x0a-\x1f\x7f]*\r\n)*'
)
"""A block of well-formed header lines: uvicorn's ``HEADER_RE`` and ``HEADER_VALUE_RE``
for every name and value, checked in one match of the whole block (uvicorn runs two
searches per header). A value holding ``\r\n`` and a valid line after it would pass as
two lines: the block must also have exactly one line per header."""

_FRAMING_NAMES = frozenset((b"content-length", b"transfer-encoding", b"connection"))

_default_block: tuple[object, bytes] = ((), b"")
"""uvicorn's default headers (its ``Date``, renewed every second as a new list) and their
lines: serialised once per list, not once per answer."""


def _default_lines(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    global _default_block
    cached, lines = _default_block
    if cached is not default_headers:
        lines = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in default_headers)
        _default_block = (default_headers, lines)
    return lines


def _go_send(cycle: httptools_impl.RequestResponseCycle, message: Any) -> Awaitable[None]:
    """The ``send`` of an HTTP/1.1 exchange: uvicorn's, with Go's status line and the
    head written with the first body bytes (:class:`_HeldHead`). Bound to its cycle as an
    instance attribute (``functools.partial``), not by changing the cycle's class: a
    ``__class__`` assignment de-optimises every attribute access on the cycle; and not
    ``async``: each message goes straight to a coroutine (:func:`_go_start` or uvicorn's
    send), without one of ours around it."""
    if cycle.response_started or message["type"] != "http.response.start":
        if not message.get("more_body", False):
            # The last message: the cycle lets go of this send, which holds it, so that
            # it is freed when the request ends, not left to the cycle collector.
            # (try, not contextlib.suppress: a context manager per request costs more)
            try:  # noqa: SIM105
                del cycle.send
            except AttributeError:  # already let go of (a second last message)
                pass
        return _uvicorn_send(cycle, message)
    return _go_start(cycle, message)


async def _go_start(cycle: httptools_impl.RequestResponseCycle, message: Any) -> None:
    """uvicorn's send of ``http.response.start`` (the same framing decisions and the same
    bytes) with Go's status line, each header line built once and the names and values
    checked in one match of the block; the head is held for the first body bytes."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    status = message["status"]
    if cycle.access_log:
        cycle.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(cycle.scope),
            cycle.scope["method"],
            get_path_with_query_string(cycle.scope),
            cycle.scope["http_version"],
            status,
        )
    lines: list[bytes] = []
    close = False
    for name, value in message.get("headers", ()):
        name = name.lower()
        lines += (name, b": ", value, b"\r\n")
        if name in _FRAMING_NAMES:
            if name == b"content-length":
                if cycle.chunked_encoding is None:
                    cycle.expected_content_length = int(value)
                    cycle.chunked_encoding = False
            elif name == b"transfer-encoding":
                if value.lower() == b"chunked":
                    cycle.expected_content_length = 0
                    cycle.chunked_encoding = True
            elif b"close" in [token.lower().strip() for token in value.split(b",")]:
                cycle.keep_alive = False
                close = True
    block = b"".join(lines)
    if _HEADER_BLOCK.fullmatch(block) is None or block.count(b"\r\n") != len(lines) >> 2:
        _refuse(message.get("headers", ()))
    head = [_LINES[status], _default_lines(cycle.default_headers), block]
    if not cycle.keep_alive and not close:
        head.append(b"connection: close\r\n")
    if (
        cycle.chunked_encoding is None
        and cycle.scope["method"] != "HEAD"
        and status != 204
        and status != 304
    ):  # neither Content-Length nor Transfer-Encoding
        cycle.chunked_encoding = True
        head.append(b"transfer-encoding: chunked\r\n")
    head.append(b"\r\n")
    held = _HeldHead(cycle, cycle.transport, b"".join(head))
    cycle.transport = held  # type: ignore[assignment]
    asyncio.get_running_loop().call_soon(held.flush)


def _refuse(headers: Any) -> None:
    """uvicorn's error for the first malformed header (an empty name too)."""
    for name, value in headers:
        if not name or httptools_impl.HEADER_RE.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if httptools_impl.HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
    raise AssertionError("a header block that fails the match has a malformed header")


class _CloseDelimitedSend:
    """The ``send`` of an HTTP/1.0 exchange: a response without Content-Length is sent
    as is and ended by closing the connection (Go's server), not chunked."""

    __slots__ = ("active", "cycle")

    def __init__(self, cycle: httptools_impl.RequestResponseCycle) -> None:
        self.cycle = cycle
        self.active = False

    async def __call__(self, message: Any) -> None:
        cycle = self.cycle
        if not cycle.response_started and message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if (
                cycle.scope["method"] != "HEAD"
                and message["status"] not in (204, 304)
                and not any(name.lower() == b"content-length" for name, _ in headers)
            ):
                self.active = True
                cycle.chunked_encoding = False
                cycle.keep_alive = False
                cycle.expected_content_length = sys.maxsize
                message = {
                    **message,
                    "headers": [
                        (name, value)
                        for name, value in headers
                        if name.lower() != b"transfer-encoding"
                    ],
                }
        elif (
            self.active
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
        ):  # uvicorn checks the length at the end
            cycle.expected_content_length = len(message.get("body", b""))
        await _go_send(cycle, message)


class EntryPointProtocol(HttpToolsProtocol):
    """uvicorn's llhttp protocol with the entry point's limits and timeouts.

    Hooks, each named for what it adds: the head is counted in :meth:`data_received`
    and checked in :meth:`on_headers_complete`; the read deadline starts in
    :meth:`connection_made` and :meth:`on_message_begin` and ends in
    :meth:`on_message_complete`, the write deadline runs from the end of the head to
    :meth:`on_response_complete`, which starts the idle one;
    :meth:`on_headers_complete` keeps trailers out of the request's headers; a method llhttp does not know hands the connection to
    :class:`TokenMethodProtocol`.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.head_limit, self.responding = _settings(config)
        self._head: list[bytes] | None = []  # the chunks of a head being read
        self._head_size = 0
        self._head_exact = True  # the head began at the start of a chunk
        self._completed_in_chunk = False
        self._in_body = False
        # The connection's deadlines (loop time; None: not running) and the one timer
        # that watches them all (see _check_deadlines).
        self._read_deadline: float | None = None
        self._write_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        idle = self.timeout_keep_alive if self.timeout_keep_alive < sys.maxsize else 0
        periods = [t for t in (self.responding.read, self.responding.write, idle) if t > 0]
        self._period = min(periods, default=0.0)

    # -- deadlines ------------------------------------------------------------------------
    #
    # readTimeout, writeTimeout and the keep-alive (idle) timeout are deadlines on the
    # connection, watched by a single timer that is re-armed only when it fires: setting
    # or clearing a deadline on every request costs an attribute write, where a
    # ``call_later`` and a ``cancel`` per timeout per request (uvicorn's keep-alive way)
    # cost a libuv timer handle each. The timer is always armed at most ``_period`` (the
    # shortest timeout) ahead, so a deadline set later never falls before it.

    def _watch(self) -> None:
        if self._timer is None and self._period:
            self._timer = self.loop.call_later(self._period, self._check_deadlines)

    def _unwatch(self) -> None:
        self._read_deadline = self._write_deadline = self._idle_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadlines(self) -> None:
        self._timer = None
        now = self.loop.time()
        read, write, idle = self._read_deadline, self._write_deadline, self._idle_deadline
        if read is not None and now >= read:
            self._read_deadline = None
            self._read_timed_out()
        elif write is not None and now >= write:
            self._write_deadline = None
            self.transport.close()
        elif idle is not None and now >= idle:
            self._idle_deadline = None
            self.timeout_keep_alive_handler()
        else:
            running = [d for d in (read, write, idle) if d is not None]
            if running:
                when = min(min(running), now + self._period)
                self._timer = self.loop.call_at(when, self._check_deadlines)

    def _start_read_deadline(self) -> None:
        """readTimeout runs from the first byte of a request (the accept, for the first)."""
        if self.responding.read and self._read_deadline is None:
            self._read_deadline = self.loop.time() + self.responding.read
            self._watch()

    def _read_timed_out(self) -> None:
        """readTimeout fired: mid-head (or before any byte) the connection is closed;
        mid-body the request is over, answered 499 unless an answer has begun."""
        cycle = self.cycle
        if self._in_body and cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            if not cycle.response_started:
                head = [b"HTTP/1.1 499 status code 499\r\n"]
                head += [b"%s: %s\r\n" % pair for pair in self.server_state.default_headers]
                self.transport.write(b"".join(head) + CLIENT_CLOSED)
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _unset_keepalive_if_required(self) -> None:
        self._idle_deadline = None

    # -- uvicorn's protocol, with the hooks ---------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._unwatch()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            head.append(data)
            self._head_size += len(data)
        self._completed_in_chunk = False
        self._idle_deadline = None  # (_unset_keepalive_if_required, inlined)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserInvalidMethodError:
            if not self._hand_to_token_method_protocol():
                self._bad_request()
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._head_too_large()
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._unwatch()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head is not None and self._head_size > self.head_limit:
            self._head_too_large()

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _head_too_large(self) -> None:
        self.logger.debug("431 Request Header Fields Too Large from %s", self.client)
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def _hand_to_token_method_protocol(self) -> bool:
        """Replay the refused request to uvicorn's h11 protocol, which serves any token
        method; only if every byte of it is known (it began at a chunk's start) and no
        response is in progress on the connection."""
        if self._head is None or not self._head_exact:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False
        self._unwatch()
        self.connections.discard(self)
        protocol = TokenMethodProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(b"".join(self._head))
        return True

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._in_body = False
        self._head_exact = not self._completed_in_chunk
        if self._head is None:
            self._head = []
            self._head_size = 0
        if self._read_deadline is None and self.responding.read:  # _start_read_deadline
            self._read_deadline = self.loop.time() + self.responding.read
            if self._timer is None:
                self._watch()

    def on_headers_complete(self) -> None:
        if self._head_size > self.head_limit and self._head_ends_past_limit():
            raise _HeadTooLarge
        self._head = None
        self._in_body = True
        parser = self.parser
        if self.limit_concurrency is not None or self.root_path or parser.should_upgrade():
            self._general_headers_complete()
            return
        # uvicorn's on_headers_complete for the usual request (no upgrade, no root path,
        # no concurrency limit), inline, with the entry point's additions.
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        http_version = parser.get_http_version()
        if http_version != "1.1":
            scope["http_version"] = http_version
        url = self.url
        parsed = httptools.parse_url(url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope["path"] = path
        # An absolute-form target keeps its authority (see _general_headers_complete).
        scope["raw_path"] = raw_path if url[:1] in _ORIGIN_FORM else url.partition(b"?")[0]
        scope["query_string"] = parsed.query or b""
        cycle = httptools_impl.RequestResponseCycle(
            scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            asyncio.Event(),
            self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(),
            self.on_response_complete,
        )
        self._bind_send(cycle)
        existing = self.cycle
        self.cycle = cycle
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, self.app)
        else:  # a pipelined request waits for the one before
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))

    def _general_headers_complete(self) -> None:
        absolute = self.url[:1] not in _ORIGIN_FORM
        previous = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is None or self.cycle is previous:
            # An upgrade: uvicorn hands the connection to its WebSocket protocol, whose
            # own timeouts apply from now on; this protocol's must not close it later.
            self._unwatch()
            return
        if absolute:
            # An absolute-form target (``GET http://a.example/x``): httptools' parse_url
            # keeps only the path, so the authority Go's server routes by would be lost.
            # Keep the whole target as h11 does; the entry point reads it from raw_path.
            self.cycle.scope["raw_path"] = self.url.partition(b"?")[0]
        self._bind_send(self.cycle)

    def _bind_send(self, cycle: httptools_impl.RequestResponseCycle) -> None:
        # From here llhttp reports trailers through on_header: they go to a list of
        # their own, not to the request's headers (the scope's list).
        self.headers = [*self.headers]
        # Another send: Go's status lines, and for HTTP/1.0 its framing.
        if cycle.scope["http_version"] == "1.0":
            cycle.send = _CloseDelimitedSend(cycle)  # type: ignore[method-assign]
        else:
            cycle.send = partial(_go_send, cycle)  # type: ignore[method-assign,assignment]
        if self.responding.write:
            self._write_deadline = self.loop.time() + self.responding.write
            self._watch()

    def _head_ends_past_limit(self) -> bool:
        """The exact size of a head that ended in the last chunk, which may also hold
        the beginning of the body."""
        assert self._head is not None
        last = self._head[-1]
        before = self._head_size - len(last)
        tail = self._head[-2][-3:] if len(self._head) > 1 else b""
        end = (tail + last).find(b"\r\n\r\n")
        if end < 0:
            return True
        return before - len(tail) + end + 4 > self.head_limit

    def on_message_complete(self) -> None:
        self._read_deadline = None
        self._in_body = False
        self._completed_in_chunk = True
        self._head = []
        self._head_size = 0
        HttpToolsProtocol.on_message_complete(self)

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive wait as a deadline instead of a timer."""
        self._write_deadline = None
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # the next pipelined request
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_deadline = self.loop.time() + self.timeout_keep_alive
            if self._timer is None:
                self._watch()


class TokenMethodProtocol(H11Protocol):
    """uvicorn's h11 protocol for a connection whose method llhttp refused: h11 accepts
    any RFC 9110 token as method, case-sensitive, as Go does. Its head limit is h11's
    (``h11_max_incomplete_event_size``, set by :class:`EntryPointConfig`), answered as
    Go answers; its read timeout closes the connection (no 499)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        _, self.responding = _settings(config)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        super().connection_lost(exc)

    def _arm_read_timer(self) -> None:
        if self.responding.read and self._read_timer is None:
            self._read_timer = self.loop.call_later(self.responding.read, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm_read_timer()
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE) and self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def send_400_response(self, msg: str) -> None:
        if self.conn.their_state is h11.ERROR and self._too_large():
            self.transport.write(TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def _too_large(self) -> bool:
        size = len(self.conn.trailing_data[0])
        return size > self.config.h11_max_incomplete_event_size  # type: ignore[operator]
