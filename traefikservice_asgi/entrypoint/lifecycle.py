"""Noticing that the client went away, and stopping the work done for it.

uvicorn's ``send`` silently drops messages once the client has disconnected, so a proxy
that only writes would keep reading a large or slow backend answer for nobody. Traefik
cancels the backend request as soon as the client goes (Go's request context), answers
nothing, logs 499, and sends no mirror copy. We do the same:

* ``receive`` and ``send`` are wrapped to learn when the request body has been read and
  when the response is complete;
* once the body has been read, ``receive`` is watched: an ``http.disconnect`` before the
  response is complete means the client left, and the request's task is cancelled, which
  closes the backend connection;
* the watcher starts only when a request is still running after ``grace`` (50 ms), seen
  by one timer per event loop that visits the requests in flight (:class:`_Overdue`): a
  fast request costs an entry in a dict, neither a task nor a timer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import CLIENT_KEY, ClientState

__all__ = ["ClientState", "CountingWatch", "serve_watched"]

access_logger = logging.getLogger("traefikservice_asgi.access")


class _Watch:
    """The per-request watcher: a small object rather than closures, because closures
    that reference each other (a timer callback re-arming itself, a watcher holding the
    task) make a reference cycle per request. Only the garbage collector frees those,
    and its collections, which grow with everything else alive (e.g. mirror copies in
    flight), stall the event loop for milliseconds. This object is freed by refcount."""

    __slots__ = ("due", "grace", "loop", "overdue", "receive", "send", "state", "task", "watcher")

    def __init__(self, state: ClientState, receive: Receive, send: Send, grace: float) -> None:
        self.state = state
        self.receive = receive
        self.send = send
        self.grace = grace
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()
        self.watcher: asyncio.Task[None] | None = None
        self.due = self.loop.time() + grace
        self.overdue = _overdue(self.loop)
        self.overdue.add(self)

    async def tracked_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            if not self.state.response_done:
                self.state.gone = True
        elif not message.get("more_body", False):
            self.state.body_done = True
        return message

    def tracked_send(self, message: Message) -> Awaitable[None]:
        # A plain call returning the next send's awaitable: an ``async def`` here cost a
        # coroutine per response message.
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.state.response_done = True
        return self.send(message)

    def arm(self, now: float) -> bool:
        """Called once ``due``: start watching if the body is read; False while the body
        is still streaming (a disconnect will show up in it; asked again later)."""
        if self.state.response_done:
            return True
        if self.state.body_done:
            self.watcher = self.loop.create_task(self.watch())
            return True
        self.due = now + self.grace
        return False

    async def watch(self) -> None:
        # A body-less request still has its (empty) body message pending: skip it; the
        # next receive() returns only when the client goes or the response completes.
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if not self.state.response_done and self.task is not None:
            self.state.gone = True
            self.task.cancel()

    def close(self) -> None:
        """Stop the watcher, and drop every reference it holds."""
        self.overdue.discard(self)
        watcher, self.watcher = self.watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
        self.task = None


class CountingWatch(_Watch):
    """A client state that is its own watch, and counts what passes between the client
    and the routing: the response's status (-1 until an answer starts) and body bytes,
    the request body's bytes. The entry point's metrics, counted in the wrappers every
    routed request has anyway rather than in another layer of its own; and one object
    where a client state and its watch are two (bench/README.md). Made before the
    routing (``observability.observe.Exchange``, which sets its client state's fields);
    :func:`serve_watched` starts the watch with :meth:`watching`."""

    __slots__ = (
        "body_done",
        "gone",
        "request_bytes",
        "response_bytes",
        "response_done",
        "status",
    )

    body_done: bool
    gone: bool
    response_done: bool
    status: int
    request_bytes: int
    response_bytes: int

    @property
    def state(self) -> CountingWatch:  # type: ignore[override]
        """Itself: the watch's client state (no attribute: no reference cycle)."""
        return self

    def watching(self, receive: Receive, send: Send, grace: float) -> None:
        """Start watching the client (what ``_Watch.__init__`` does, the state itself)."""
        self.receive = receive
        self.send = send
        self.grace = grace
        self.task = asyncio.current_task()
        loop = self.loop = asyncio.get_running_loop()
        self.watcher = None
        self.due = loop.time() + grace
        self.overdue = _overdue(loop)
        self.overdue.add(self)

    async def tracked_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            if not self.response_done:
                self.gone = True
        else:
            self.request_bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.body_done = True
        return message

    def tracked_send(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            self.response_bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.response_done = True
        elif kind == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class _Overdue:
    """The requests of one event loop still waiting for their ``grace`` to end, visited
    by one timer every ``period`` while there are any: a timer per request (a libuv
    handle each under uvloop, made and cancelled for nearly every request) cost more
    than the whole check."""

    __slots__ = ("period", "timer", "waiting")

    def __init__(self, period: float) -> None:
        # No reference to the loop: the loop is this object's key in _OVERDUE.
        self.period = period
        self.waiting: dict[_Watch, None] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, watch: _Watch) -> None:
        self.waiting[watch] = None
        if self.timer is None:
            self.period = min(self.period, watch.grace)
            self.timer = watch.loop.call_later(self.period, self.visit)

    def discard(self, watch: _Watch) -> None:
        self.waiting.pop(watch, None)

    def visit(self) -> None:
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for watch in [w for w in self.waiting if w.due <= now]:
            if watch.arm(now):
                del self.waiting[watch]
        if self.waiting:
            self.timer = loop.call_later(self.period, self.visit)


_OVERDUE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Overdue] = (
    weakref.WeakKeyDictionary()
)


_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Overdue] | None = None
"""The last loop asked for and its :class:`_Overdue`: a process serves from one loop,
and a ``WeakKeyDictionary`` lookup (a new weak reference per call) cost more than the
whole check of a request."""


def _overdue(loop: asyncio.AbstractEventLoop) -> _Overdue:
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    overdue = _OVERDUE.get(loop)
    if overdue is None:
        overdue = _OVERDUE[loop] = _Overdue(DEFAULT_GRACE)
    _last = (weakref.ref(loop), overdue)
    return overdue


DEFAULT_GRACE = 0.05
"""Seconds a request runs before the client is watched (most requests are done by then)."""


async def serve_watched(
    handler: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    has_body: bool,
    grace: float = DEFAULT_GRACE,
    counted: CountingWatch | None = None,
) -> None:
    """Run ``handler``; cancel it if the client disconnects before the response ends.
    With ``counted``, that is the client's state and its watch, and what goes through
    is counted in it.
    """
    watch: _Watch
    state: ClientState | CountingWatch
    if counted is None:
        state = ClientState(not has_body)  # (positional: a keyword costs a request more)
        watch = _Watch(state, receive, send, grace)
    else:
        state = watch = counted
        counted.body_done = not has_body
        counted.watching(receive, send, grace)
    scope[CLIENT_KEY] = state  # (context.set_client_state, one call less)
    try:
        await handler(scope, watch.tracked_receive, watch.tracked_send)
    except asyncio.CancelledError:
        if not state.gone:
            raise
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:  # Python 3.11+: this cancellation is handled here
            uncancel()
        access_logger.info(
            "499 Client Closed Request: %s %s", scope.get("method"), scope.get("path")
        )
    finally:
        watch.close()
