"""Traefik's ``mirroring`` service: the main service answers, mirrors get copies.

Port of ``pkg/server/service/loadbalancer/mirror/mirror.go`` (Traefik 3.7):

* ``percent`` is a deterministic counter, not a dice roll: per mirroring service a
  request counter ``total``, per mirror a counter ``count``; request *n* goes to a mirror
  when ``count * 100 < total * percent``. At 10 % that is requests 1, 11, 21, ... exactly,
  under any concurrency. The counters advance even for requests then not mirrored.
* With a body to copy (``mirrorBody``, default true) the body is buffered up to
  ``maxBodySize`` (default -1, unlimited); a larger body is still served by the main
  service, stitched back together, and that request is not mirrored.
* Copies are sent only after the main response is complete and only if the client did
  not go away, as one background task per request that visits the selected mirrors in
  config order. Their responses are read and discarded; their failures are logged at
  debug level and never reach the client.

Better than Traefik: ``mirrorBody: false`` sends the copy without a body and without a
stale ``Content-Length`` (Traefik sends the header, then aborts: issue #13292), and every
copy is owned by the gateway's :class:`~traefikservice_asgi._background.BackgroundTasks`,
so shutdown waits for them a bounded time instead of dropping them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._background import BackgroundTasks
from .._body import BufferedBody, read_body, replay
from .._forwarding import without_body

__all__ = ["Mirror", "Mirroring"]

logger = logging.getLogger("traefikservice_asgi.mirror")


@dataclass(slots=True)
class Mirror:
    """A mirror target with its percentage and its own counter."""

    name: str
    handler: ASGIApp
    percent: int
    count: int = 0


async def _discard(message: Message) -> None:
    """The mirror's ``send``: every response message is dropped (Traefik's
    ``blackHoleResponseWriter``)."""


class Mirroring:
    """An ASGI app serving requests from ``main`` and copying some to ``mirrors``."""

    __slots__ = ("_main", "_max_body_size", "_mirror_body", "_mirrors", "_tasks", "name", "total")

    def __init__(
        self,
        main: ASGIApp,
        mirrors: Sequence[Mirror],
        *,
        tasks: BackgroundTasks,
        mirror_body: bool = True,
        max_body_size: int = -1,
        name: str = "",
    ) -> None:
        for mirror in mirrors:
            if not 0 <= mirror.percent <= 100:
                raise ValueError(f"percent must be between 0 and 100, got {mirror.percent}")
        self.name = name
        self._main = main
        self._mirrors = list(mirrors)
        self._tasks = tasks
        self._mirror_body = mirror_body
        self._max_body_size = max_body_size
        self.total = 0

    def _select(self) -> list[Mirror]:
        self.total += 1
        total = self.total
        selected = []
        for mirror in self._mirrors:
            if mirror.count * 100 < total * mirror.percent:
                mirror.count += 1
                selected.append(mirror)
        return selected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        selected = self._select()
        if not selected:
            await self._main(scope, receive, send)
            return

        data: bytes | None = None  # None: the copies carry no body
        main_receive = receive
        if self._mirror_body:
            buffered: BufferedBody = await read_body(receive, self._max_body_size)
            main_receive = buffered.replay()
            if not buffered.complete:
                # Too large (or the client left while sending it): serve, don't copy.
                await self._main(scope, main_receive, send)
                return
            data = buffered.data

        gone = False

        async def watching_receive() -> Message:
            nonlocal gone
            message = await main_receive()
            if message["type"] == "http.disconnect":
                gone = True
            return message

        await self._main(scope, watching_receive, send)
        if gone:
            return
        copy_scope = scope if data is not None else without_body(scope)
        self._tasks.spawn(self._send_copies(copy_scope, data or b"", selected))

    async def _send_copies(self, scope: Scope, data: bytes, mirrors: list[Mirror]) -> None:
        for mirror in mirrors:
            try:
                await mirror.handler(scope, replay(data), _discard)
            except Exception:  # a broken mirror must not stop the next one
                logger.debug("mirror %s failed", mirror.name, exc_info=True)
