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

__all__ = ["STATE_KEY", "ClientState", "client_gone", "serve_watched"]

STATE_KEY = "traefikservice_asgi.client"

access_logger = logging.getLogger("traefikservice_asgi.access")


class ClientState:
    """Per request: has the body been read, is the response complete, did the client go."""

    __slots__ = ("body_done", "gone", "response_done")

    def __init__(self, body_done: bool) -> None:
        self.body_done = body_done
        self.response_done = False
        self.gone = False


def client_gone(scope: Scope) -> bool:
    """Whether the client of this request is known to have disconnected."""
    state: ClientState | None = scope.get(STATE_KEY)
    return state is not None and state.gone


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
    scope[STATE_KEY] = state

    async def tracked_receive() -> Message:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not state.response_done:
                state.gone = True
        elif not message.get("more_body", False):
            state.body_done = True
        return message

    async def tracked_send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            state.response_done = True
        await send(message)

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None

    async def watch() -> None:
        # A body-less request still has its (empty) body message pending: skip it; the
        # next receive() returns only when the client goes or the response completes.
        while (await receive())["type"] != "http.disconnect":
            pass
        if not state.response_done and task is not None:
            state.gone = True
            task.cancel()

    def arm() -> None:
        nonlocal watcher, timer
        if state.response_done:
            return
        if state.body_done:
            watcher = loop.create_task(watch())
        else:  # the body is still streaming: a disconnect will show up in it
            timer = loop.call_later(grace, arm)

    timer = loop.call_later(grace, arm)
    try:
        await handler(scope, tracked_receive, tracked_send)
    except asyncio.CancelledError:
        if not state.gone:
            raise
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:  # Python 3.11+: this cancellation is handled here
            uncancel()
        access_logger.info(
            "499 Client Closed Request: %s %s", scope.get("method"), scope.get("path")
        )
    finally:
        if timer is not None:
            timer.cancel()
        if watcher is not None and not watcher.done():
            watcher.cancel()
