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
* the watcher starts only when a request is still running after ``grace`` (50 ms): a
  fast request costs one timer, not one task.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import ClientState, set_client_state

__all__ = ["ClientState", "serve_watched"]

access_logger = logging.getLogger("traefikservice_asgi.access")


class _Watch:
    """The per-request watcher: a small object rather than closures, because closures
    that reference each other (a timer callback re-arming itself, a watcher holding the
    task) make a reference cycle per request. Only the garbage collector frees those,
    and its collections, which grow with everything else alive (e.g. mirror copies in
    flight), stall the event loop for milliseconds. This object is freed by refcount."""

    __slots__ = ("grace", "loop", "receive", "send", "state", "task", "timer", "watcher")

    def __init__(self, state: ClientState, receive: Receive, send: Send, grace: float) -> None:
        self.state = state
        self.receive = receive
        self.send = send
        self.grace = grace
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()
        self.watcher: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(grace, self.arm)

    async def tracked_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            if not self.state.response_done:
                self.state.gone = True
        elif not message.get("more_body", False):
            self.state.body_done = True
        return message

    async def tracked_send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.state.response_done = True
        await self.send(message)

    def arm(self) -> None:
        self.timer = None
        if self.state.response_done:
            return
        if self.state.body_done:
            self.watcher = self.loop.create_task(self.watch())
        else:  # the body is still streaming: a disconnect will show up in it
            self.timer = self.loop.call_later(self.grace, self.arm)

    async def watch(self) -> None:
        # A body-less request still has its (empty) body message pending: skip it; the
        # next receive() returns only when the client goes or the response completes.
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if not self.state.response_done and self.task is not None:
            self.state.gone = True
            self.task.cancel()

    def close(self) -> None:
        """Stop the timer and the watcher, and drop every reference they hold."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        watcher, self.watcher = self.watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
        self.task = None


async def serve_watched(
    handler: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    has_body: bool,
    grace: float = 0.05,
) -> None:
    """Run ``handler``; cancel it if the client disconnects before the response ends."""
    state = ClientState(body_done=not has_body)
    set_client_state(scope, state)
    watch = _Watch(state, receive, send, grace)
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
