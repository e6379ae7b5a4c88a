"""Active health checks of servers: Traefik's ``pkg/healthcheck`` (HTTP mode).

A Service reference with a ``healthCheck`` gets a servers load balancer that follows
its servers' health, as Traefik's ``ServiceHealthChecker`` drives it:

* Every server starts UP. It is probed every ``interval`` while UP and every
  ``unhealthyInterval`` while DOWN, on two clocks started together (Traefik's two
  tickers): the first probe comes one interval after the start, not at once, and a
  probe that overruns its tick waits for the next one (a Go ticker drops ticks).
* The probe is ``method`` to the server URL resolved against ``path`` (Go's
  ``url.Parse``: ``/health`` or ``health`` both end up at ``/health``), with ``scheme``
  and ``port`` replaced when set, ``Host: hostname`` when set, then ``headers``
  (a ``Host`` among them is ignored, as Go ignores it). It goes through the client of
  the balancer's ServersTransport (the gateway's shared client by default), following
  redirects unless ``followRedirects: false``, bounded by ``timeout`` as a whole.
* UP means an answer within the timeout with ``status``, or, without ``status``, any
  status from 200 to 399. Anything else (a refused connection, a timeout, another
  status) is DOWN. Only the status line and headers are waited for: the body is
  dropped unread, as Traefik closes it unread.
* After every probe the balancer hears the result (``set_status``); the balancer
  tells its parents only when it flips as a whole (:mod:`.loadbalancer._status`).
  A change of a server's state is logged once, at info level, on the
  ``traefikservice_asgi.healthcheck`` logger; every failed probe at debug level.

Different from Traefik: each server has its own task, so one slow server does not delay
the probes of the others (Traefik probes a service's servers one after the other).

The middleware owns every task (:class:`HealthChecks`): started with the ASGI lifespan
or, without one, by the first request; cancelled and awaited by ``aclose``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from .config import HealthCheck
from .transport import ClientHolder

__all__ = ["HealthChecks", "ServerHealthChecker", "StatusSetter"]

logger = logging.getLogger("traefikservice_asgi.healthcheck")

# What Go's http.Client sends unless told otherwise.
_USER_AGENT = "Go-http-client/1.1"


class StatusSetter(Protocol):
    """What a health checker drives: a servers load balancer (Traefik's
    ``healthcheck.StatusSetter``)."""

    def set_status(self, child: str, up: bool) -> None: ...


class ServerHealthChecker:
    """The health checks of one servers load balancer (Traefik's
    ``ServiceHealthChecker``); ``servers`` are the balancer's child names, their URLs."""

    __slots__ = ("balancer", "config", "holder", "name", "servers")

    def __init__(
        self,
        name: str,
        config: HealthCheck,
        balancer: StatusSetter,
        servers: Sequence[str],
        holder: ClientHolder,
    ) -> None:
        if config.interval <= 0 or config.unhealthy_interval <= 0 or config.timeout <= 0:
            raise ValueError("health check intervals and timeout must be more than 0")
        self.name = name
        self.config = config
        self.balancer = balancer
        self.servers = tuple(servers)
        self.holder = holder

    def probe_url(self, server: str) -> str:
        """Where the probe of ``server`` goes (Traefik's ``newRequest``)."""
        config = self.config
        # urljoin knows only registered schemes: an h2c:// server is joined as http://,
        # then its scheme put back (Go's url.ResolveReference has no such list).
        server_scheme, sep, rest = server.partition("://")
        base = f"http://{rest}" if sep and server_scheme == "h2c" else server
        parts = urlsplit(urljoin(base, config.path))
        scheme, netloc = (server_scheme if base is not server else parts.scheme), parts.netloc
        if config.scheme:
            scheme = config.scheme
        if config.port:
            host = parts.hostname or ""
            netloc = f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"
        return urlunsplit((scheme, netloc, parts.path, parts.query, ""))

    def probe_request(self, server: str) -> httpx.Request:
        config = self.config
        headers: dict[str, str] = {"User-Agent": _USER_AGENT}
        if config.hostname:
            headers["Host"] = config.hostname
        for key, value in config.headers:
            if key.lower() == "host":
                continue  # Go sends req.Host, never a Host from the header map
            # Header.Set: the last value for a name wins, whatever its case.
            for existing in [k for k in headers if k.lower() == key.lower()]:
                del headers[existing]
            headers[key] = value
        if config.method != "HEAD" and not any(k.lower() == "accept-encoding" for k in headers):
            headers["Accept-Encoding"] = "gzip"  # Go's transport adds it
        return httpx.Request(config.method, self.probe_url(server), headers=headers)

    async def check(self, server: str) -> str | None:
        """Probe ``server`` once: None if it is UP, else why it is DOWN."""
        config = self.config
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(config.timeout):
                    code = await self._status_of(server)
            else:  # pragma: no cover - wait_for may swallow a cancellation before 3.12
                code = await asyncio.wait_for(self._status_of(server), config.timeout)
        except asyncio.TimeoutError:
            return f"no answer within {config.timeout:g}s"
        except Exception as exc:  # refused, reset, bad URL...: DOWN, whatever the cause
            return f"HTTP request failed: {exc!r}"
        if config.status == 0 and not 200 <= code < 400:
            return f"received error status code: {code}"
        if config.status != 0 and code != config.status:
            return f"received error status code: {code} expected status code: {config.status}"
        return None

    async def _status_of(self, server: str) -> int:
        response = await self.holder.client.send(
            self.probe_request(server), stream=True, follow_redirects=self.config.follow_redirects
        )
        await response.aclose()
        return response.status_code

    async def watch(self, server: str, started: float, stopped: asyncio.Event) -> None:
        """Probe ``server`` on the clock started at ``started`` (loop time) until
        cancelled or ``stopped`` (a second way out, should a cancellation be lost)."""
        loop = asyncio.get_running_loop()
        up = True
        while not stopped.is_set():
            period = self.config.interval if up else self.config.unhealthy_interval
            now = loop.time()
            tick = started + (math.floor((now - started) / period) + 1) * period
            await asyncio.sleep(tick - now)
            reason = await self.check(server)
            now_up = reason is None
            if not now_up:
                logger.debug("health check of %s (%s) failed: %s", server, self.name, reason)
            self.balancer.set_status(server, now_up)
            if now_up != up:
                if now_up:
                    logger.info("server %s of service %s is UP again", server, self.name)
                else:
                    logger.info("server %s of service %s is DOWN: %s", server, self.name, reason)
            up = now_up


class HealthChecks:
    """Every health checker of a gateway, one task per server, with one owner.

    :meth:`start` is idempotent and cheap, so the middleware calls it on every request
    as well as at lifespan startup: whichever comes first starts the probes, in the
    running event loop (again, if a previous loop has gone, as under repeated
    ``asyncio.run``). After :meth:`aclose` nothing starts again.
    """

    __slots__ = ("_closed", "_lent", "_loop", "_stopped", "_tasks", "checkers")

    def __init__(self, checkers: Sequence[ServerHealthChecker]) -> None:
        self.checkers = tuple(checkers)
        # The probe tasks of each checker (by id), in the loop that started them.
        self._tasks: dict[int, list[asyncio.Task[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._closed = False
        self._lent = False  # some tasks were adopted by a successor (a live reload)

    def __len__(self) -> int:
        """The number of probe tasks running."""
        return sum(1 for tasks in self._tasks.values() for task in tasks if not task.done())

    @property
    def started(self) -> bool:
        """Whether the probes were started (and not closed)."""
        return self._loop is not None and not self._closed

    def start(self) -> None:
        if self._closed or not self.checkers:
            return
        loop = asyncio.get_running_loop()
        if loop is self._loop and len(self._tasks) == len(self.checkers):
            return
        if loop is not self._loop:
            self._loop = loop
            self._tasks = {}
            self._stopped = asyncio.Event()
        stopped = self._stopped
        assert stopped is not None  # set with _loop, just above or by adopt()
        started = loop.time()
        for checker in self.checkers:
            if id(checker) in self._tasks:
                continue  # running already (adopted from the previous runtime)
            tasks = self._tasks[id(checker)] = []
            for server in checker.servers:
                task = loop.create_task(
                    checker.watch(server, started, stopped),
                    name=f"healthcheck {checker.name} {server}",
                )
                tasks.append(task)
                task.add_done_callback(self._done)

    def adopt(self, previous: HealthChecks) -> int:
        """Take over ``previous``' running probes of the checkers both hold (a live
        reload keeps an unchanged service's checker, and its health, running); the
        others stay ``previous``' to stop. Call in the loop, before :meth:`start`.
        Returns the number of checkers adopted."""
        if previous._loop is None or previous._closed or self._closed:
            return 0
        if self._loop is not None and self._loop is not previous._loop:
            return 0
        adopted = 0
        for checker in self.checkers:
            tasks = previous._tasks.pop(id(checker), None)
            if tasks is not None:
                self._tasks[id(checker)] = tasks
                adopted += 1
        if adopted:
            previous._lent = True
            # The adopted tasks wait on previous' event: it becomes this one's too,
            # and previous no longer sets it when closing.
            self._loop, self._stopped = previous._loop, previous._stopped
        return adopted

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("health check task %s failed", task.get_name(), exc_info=task.exception())

    async def aclose(self) -> None:
        """Stop every probe and wait until each task has ended."""
        self._closed = True
        tasks = [task for group in self._tasks.values() for task in group if not task.done()]
        self._tasks = {}
        if not tasks or self._loop is None:
            return
        if self._loop is asyncio.get_running_loop():
            if self._stopped is not None and not self._lent:
                self._stopped.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        elif not self._loop.is_closed():  # started in another, still running, loop
            for task in tasks:
                self._loop.call_soon_threadsafe(task.cancel)
