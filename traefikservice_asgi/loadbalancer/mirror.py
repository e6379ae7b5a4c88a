"""Traefik's ``mirroring`` service: the main service answers, mirrors get copies.

Port of ``pkg/server/service/loadbalancer/mirror/mirror.go`` (Traefik 3.7):

* ``percent`` is a deterministic counter, not a dice roll: per mirroring service a
  request counter ``total``, per mirror a counter ``count``; request *n* goes to a mirror
  when ``count * 100 < total * percent``. At 10 % that is requests 1, 11, 21, ... exactly,
  under any concurrency. The counters advance even for requests then not mirrored.
* With a body to copy (``mirrorBody``, default true) the copy must hold the whole body:
  one larger than ``maxBodySize`` (default -1, unlimited) is still served by the main
  service, and that request is not mirrored.
* Copies are sent only after the main response is complete and only if the client did
  not go away, by one background task per request that visits the selected mirrors in
  config order. Their responses are read and discarded; their failures are logged at
  debug level and never reach the client.

Better than Traefik: the body streams to the main service while a bounded copy is kept
(Traefik buffers it all first); every copy runs in the gateway's
:class:`~traefikservice_asgi.loadbalancer.mirror_pool.MirrorPool`, bounded in number,
buffered bytes and time; ``mirrorBody: false`` sends the copy without a body and without a stale
``Content-Length`` (Traefik sends the header, then aborts: issue #13292).

Cheaper than a task per copy waiting for its answer: a mirror built ``detached`` (the
builder marks those whose tree has only weighted, HRW and plain server-balancing nodes,
which pick a child without looking at the answer) lets its leaves hand the exchange to
the transport, which discards the answer by itself. The task then ends as soon as the
copies are written, and the next mirror's copy goes out without waiting for this one's
answer (Traefik waits: a hanging first mirror holds back the others' copies). A mirror
whose tree reads answers (failover, ``p2c``, ``leasttime``, a nested mirroring) keeps
the whole ASGI exchange.

Health: as in Traefik, a mirroring passes its main service's health through to its
parents (:meth:`Mirroring.register_status_updater`) only if built with a health check,
which the CRD cannot ask for, so in configurations it never does.

Different from Traefik: a WebSocket is served by the main service only. Traefik sends
the selected mirrors a copy of the upgrade request once the connection ends, and that
copy fails as soon as a mirror answers ``101`` (its discarding response writer cannot be
hijacked), so a mirror sees an upgrade request and a dropped connection. Here no copy is
attempted. The counters still advance, so the HTTP requests that follow are mirrored
exactly as in Traefik.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import DEFAULT_MAX_BODY_SIZE
from ..entrypoint.context import as_copy, client_gone, forward_of, without_body
from ..exceptions import HealthCheckNotEnabled
from ._status import StatusUpdater, StatusUpdaterSource
from .body import Tee, replay
from .mirror_pool import MirrorPool

__all__ = ["Mirror", "Mirroring"]

logger = logging.getLogger("traefikservice_asgi.mirror")


@dataclass(slots=True)
class Mirror:
    """A mirror target with its percentage and its own counter. ``detached``: nothing in
    its tree reads an answer, so its leaves may leave the answer to the transport."""

    name: str
    handler: ASGIApp
    percent: int
    count: int = 0
    detached: bool = False


async def _discard(message: Message) -> None:
    """The mirror's ``send``: every response message is dropped (Traefik's
    ``blackHoleResponseWriter``)."""


class Mirroring:
    """An ASGI app serving requests from ``main`` and copying some to ``mirrors``."""

    __slots__ = (
        "_health_check",
        "_main",
        "_max_body_size",
        "_mirror_body",
        "_mirrors",
        "_pool",
        "name",
        "total",
    )

    reads_answers: ClassVar[bool] = True
    """Counted as reading answers (it relays the main's), so a mirror whose tree is a
    mirroring keeps its whole exchange (see :mod:`traefikservice_asgi.builder`)."""

    def __init__(
        self,
        main: ASGIApp,
        mirrors: Sequence[Mirror],
        *,
        pool: MirrorPool,
        mirror_body: bool = True,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        health_check: bool = False,
        name: str = "",
    ) -> None:
        for mirror in mirrors:
            if not 0 <= mirror.percent <= 100:
                raise ValueError(f"percent must be between 0 and 100, got {mirror.percent}")
        self.name = name
        self._main = main
        self._mirrors = list(mirrors)
        self._pool = pool
        self._mirror_body = mirror_body
        self._max_body_size = max_body_size
        self._health_check = health_check
        self.total = 0

    def register_status_updater(self, updater: StatusUpdater) -> None:
        """Follow the main service's health (Traefik's mirroring hands the updater to
        its main service); refused, as in Traefik, without a health check here or there."""
        if not self._health_check:
            raise HealthCheckNotEnabled(
                "healthCheck not enabled in config for this mirroring service"
            )
        if not isinstance(self._main, StatusUpdaterSource):
            raise HealthCheckNotEnabled("service of mirroring is not a status updater")
        self._main.register_status_updater(updater)

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
        if scope["type"] == "websocket":  # never copied: see the module docstring
            await self._main(scope, receive, send)
            return
        if not selected:
            await self._main(scope, receive, send)
            return
        if not forward_of(scope).has_body:
            await self._main(scope, receive, send)
            if not client_gone(scope):
                self._copy(scope, b"", selected, 0)
            return
        if not self._mirror_body:
            await self._main(scope, receive, send)
            if not client_gone(scope):
                self._copy(without_body(scope), b"", selected, 0)
            return

        pool = self._pool
        tee = Tee(receive, self._max_body_size, pool)
        try:
            await self._main(scope, tee, send)
        except BaseException:
            pool.release(tee.size)
            raise
        if tee.disconnected or client_gone(scope):
            pool.release(tee.size)
        elif not tee.complete:
            pool.release(tee.size)
            pool.drop(tee.overflow or "body not read to its end by the main service")
        else:
            self._copy(scope, tee.data, selected, tee.size)

    def _copy(self, scope: Scope, data: bytes, mirrors: list[Mirror], reserved: int) -> None:
        """Start one request's copies as a job of the pool (if under its cap)."""
        job = self._pool.admit(reserved)
        if job is None:
            return
        # One scope per kind of mirror among those selected, each built once: usually
        # every mirror is of one kind, and that is one dict copy per mirrored request.
        kinds = {m.detached for m in mirrors}
        whole = as_copy(scope) if False in kinds else scope
        detached = as_copy(scope, job) if True in kinds else scope
        job.run(self._send_copies(whole, detached, data, mirrors))

    async def _send_copies(
        self, whole: Scope, detached: Scope, data: bytes, mirrors: list[Mirror]
    ) -> None:
        for mirror in mirrors:
            try:
                scope = detached if mirror.detached else whole
                await mirror.handler(scope, replay(data), _discard)
            except Exception:  # a broken mirror must not stop the next one
                logger.debug("mirror %s failed", mirror.name, exc_info=True)
