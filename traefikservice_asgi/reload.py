"""Live configuration: reload without a restart and without losing a request.

A reload (``TraefikServiceMiddleware.reload``, a file change, ``SIGHUP``):

1. loads and validates the files and builds the new :class:`~.runtime.Runtime` *to the
   side*, in a thread (``asyncio.to_thread``): the event loop keeps serving meanwhile;
   every node whose resolved value did not change keeps its handler and state
   (``reuse.py``). The thread is paced (:class:`Pacer`): it works in slices of
   :data:`SLICE` at most, and before each next one waits for the loop to run an
   iteration, so a busy loop's iterations are longer by a slice, not twice as long;
2. on the loop, hands the unchanged health checkers' running probes to the new runtime
   and swaps the middleware's one reference. A request reads that reference once, when
   it starts, so requests in flight finish on the old runtime;
3. closes the old runtime once its requests are done (:data:`DRAIN_TIMEOUT` at most):
   its remaining health checks, and the clients no longer used. Mirror copies run in the
   one pool both runtimes share, within their limits.

A configuration that does not load keeps the previous one: each error is logged once,
with its file, line and field path, and counted in :class:`ReloadStats`. A change that
changes nothing is not applied (as Traefik skips a configuration equal to the last).

Watching (:class:`Reloader`, ``watch=True``): the folders of the configured paths are
watched (a folder, not the file: a Kubernetes ConfigMap mount swaps a ``..data``
symlink), and a change is applied once the files have been quiet for
:data:`QUIET_PERIOD` and at least ``throttle`` after the previous reload, Traefik's
``providersThrottleDuration`` (2 s by default): changes in between are folded into one.

The cycle collector is off while a reload builds, and what is alive once the new
runtime is in place is frozen (``gc.freeze``): building a large configuration allocates
as many objects as the one in place, which made CPython run full collections over both,
each holding the GIL (so stalling the event loop) for tens to hundreds of milliseconds
with 1,000 routes (bench/README.md). Frozen objects are still freed when their last
reference goes, as a replaced runtime's are (the runtime makes no reference cycles; a
test checks that a reload leaves none), but cyclic garbage alive at that moment (of the
process, not only the gateway's) is kept until ``gc.unfreeze()``: the price of no full
collection. A refused configuration freezes nothing: its error objects go to the
collector as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .builder import build_runtime
from .config import Config, ConfigError
from .config._pacing import pacing, release
from .observability.looplag import AFTER, loop_lag_from_env
from .observability.outdated import Configured, configured
from .reuse import KeyMaker
from .runtime import Runtime

if TYPE_CHECKING:
    from .middleware import TraefikServiceMiddleware

__all__ = [
    "DEFAULT_THROTTLE",
    "DRAIN_TIMEOUT",
    "QUIET_PERIOD",
    "SLICE",
    "Pacer",
    "ReloadStats",
    "ReloadSummary",
    "Reloader",
    "retire",
    "run_paced",
    "summarize",
]

logger = logging.getLogger("traefikservice_asgi.reload")

DEFAULT_THROTTLE = 2.0
"""Seconds between two reloads at least: Traefik's ``providersThrottleDuration``."""
QUIET_PERIOD = 0.05
"""Seconds without a file event before a change is read (an editor's several writes,
a ConfigMap's symlink swap, are one change)."""
DRAIN_TIMEOUT = 30.0
"""Seconds an old runtime's requests may take before its clients are closed anyway."""
SLICE = 0.002
"""Seconds a reload's loading thread works before it lets the event loop run."""


class Pacer:
    """The hook of a reload's loading thread (``config/_pacing.py``): once the thread has
    worked :data:`SLICE`, it waits until the event loop has run a callback it scheduled,
    that is, until the loop's iteration in progress is over.

    Both threads need the GIL, and CPython hands it over every switch interval (5 ms):
    without pacing, a busy loop and the thread take turns, and each of the loop's
    iterations takes about twice as long (the loop's longest stall during a 1,000-route
    reload under load was up to 143 ms on a shared box, bench/README.md). Paced, the thread takes one slice
    per iteration of a busy loop, and runs freely while the loop is idle: the reload
    takes longer under load, the requests do not. ``waits`` counts the pauses."""

    def __init__(self, loop: asyncio.AbstractEventLoop, slice_: float | None = None) -> None:
        self.loop = loop
        self.slice = SLICE if slice_ is None else slice_
        self.waits = 0
        self._turn = threading.Event()
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since < self.slice:
            return
        self._turn.clear()
        try:
            self.loop.call_soon_threadsafe(self._turn.set)
        except RuntimeError:  # the loop is closed: nothing left to pace for
            self.slice = float("inf")
            return
        self._turn.wait(1.0)  # bounded: a loop that stopped must not hold the reload
        self.waits += 1
        self._since = time.perf_counter()


T = TypeVar("T")


async def run_paced(func: Callable[[], T]) -> T:
    """``func()`` in a thread paced by a :class:`Pacer` of the running loop: long
    configuration work (a reload's, the Kubernetes provider's loads) while serving."""
    pacer = Pacer(asyncio.get_running_loop())

    def paced() -> T:
        with pacing(pacer):
            return func()

    return await asyncio.to_thread(paced)


@dataclass(frozen=True, slots=True)
class ReloadSummary:
    """What a reload changed: route and service names added, removed and changed
    (changed: the same name, another resolved value, see ``reuse.py``), how many
    service nodes kept their state, and how long it took (seconds)."""

    routes_added: tuple[str, ...] = ()
    routes_removed: tuple[str, ...] = ()
    routes_changed: tuple[str, ...] = ()
    services_added: tuple[str, ...] = ()
    services_removed: tuple[str, ...] = ()
    services_changed: tuple[str, ...] = ()
    services_kept: int = 0
    nodes_reused: int = 0
    duration: float = 0.0
    applied: bool = True

    @property
    def changed(self) -> bool:
        """Whether anything a request could see changed."""
        return any(
            (
                self.routes_added,
                self.routes_removed,
                self.routes_changed,
                self.services_added,
                self.services_removed,
                self.services_changed,
            )
        )

    def __str__(self) -> str:
        if not self.changed:
            return f"no change ({self.duration * 1000:.1f} ms)"

        def part(label: str, names: tuple[str, ...]) -> str:
            if not names:
                return ""
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            return f" {label} {len(names)} ({shown})"

        routes = (
            part("+", self.routes_added)
            + part("-", self.routes_removed)
            + part("~", self.routes_changed)
        )
        services = (
            part("+", self.services_added)
            + part("-", self.services_removed)
            + part("~", self.services_changed)
        )
        return (
            f"routes{routes or ' unchanged'}; services{services or ' unchanged'},"
            f" {self.services_kept} kept ({self.nodes_reused} nodes kept their state)"
            f" in {self.duration * 1000:.1f} ms"
        )


@dataclass(slots=True)
class ReloadStats:
    """The reloads of one middleware, for metrics (Traefik's
    ``traefik_config_reloads_total`` and ``traefik_config_last_reload_success``):
    ``reloads`` applied, ``failures`` (a configuration refused), the wall-clock times
    (``time.time()``) of the last success and failure, and the last error's text."""

    reloads: int = 0
    failures: int = 0
    last_success: float | None = None
    last_failure: float | None = None
    last_error: str | None = None
    last_summary: ReloadSummary | None = field(default=None, repr=False)


def _route_keys(config: Config, keys: KeyMaker) -> dict[str, Hashable]:
    return {
        r.name: (r.rule.text, r.rule.syntax, r.priority, keys(r.service)) for r in config.routes
    }


def summarize(old: Config, new: Config) -> ReloadSummary:
    """The routes and services (by name) ``new`` adds, removes and changes from ``old``."""
    keys = KeyMaker()  # one memo: old and new share no node, but each shares its own
    old_routes, new_routes = _route_keys(old, keys), _route_keys(new, keys)
    old_services = {name: keys(s) for name, s in old.services.items()}
    new_services = {name: keys(s) for name, s in new.services.items()}

    def diff(
        a: dict[str, Hashable], b: dict[str, Hashable]
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        added = tuple(sorted(b.keys() - a.keys()))
        removed = tuple(sorted(a.keys() - b.keys()))
        changed = tuple(sorted(n for n in a.keys() & b.keys() if a[n] != b[n]))
        return added, removed, changed

    ra, rr, rc = diff(old_routes, new_routes)
    sa, sr, sc = diff(old_services, new_services)
    kept = len(old_services.keys() & new_services.keys()) - len(sc)
    # Route order matters too (matching order): a reordering alone is a change.
    if not (ra or rr or rc) and list(old_routes) != list(new_routes):
        rc = tuple(sorted(new_routes))
    for made in (old_routes, new_routes, old_services, new_services):
        release(made)  # each key frees little while the memo holds its parts
    keys.release()
    return ReloadSummary(ra, rr, rc, sa, sr, sc, kept)


async def retire(old: Runtime, successor: Runtime, timeout: float = DRAIN_TIMEOUT) -> None:
    """Close ``old`` once its requests are done (``timeout`` at most): its health checks
    not adopted by ``successor``, its mirror pool and clients unless ``successor``
    holds them."""
    deadline = time.monotonic() + timeout
    while old.in_flight.count > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a poll: an Event per runtime would cost every request
    if old.in_flight.count > 0:
        logger.warning(
            "%d request(s) still in flight on the previous configuration after %.0f s; "
            "closing its connections",
            old.in_flight.count,
            timeout,
        )
    await old.health_checks.aclose()
    if old.mirror_pool is not successor.mirror_pool:
        await old.mirror_pool.aclose()
    kept = {id(holder) for holder in successor.holders}
    for holder in old.holders:
        if id(holder) not in kept:
            await holder.aclose()


def _watched_roots(paths: Sequence[str | Path]) -> list[Path]:
    """The folders to watch: each folder given, and each file's folder (a ConfigMap's
    ``..data`` symlink swap is an event in the folder, none on the file's symlink)."""
    roots: list[Path] = []
    for raw in paths:
        path = Path(raw).absolute()
        root = path if path.is_dir() else path.parent
        if root not in roots:
            roots.append(root)
    return roots


class Reloader:
    """The reloads of one middleware: one at a time, counted in :attr:`stats`; the
    file watcher and the ``SIGHUP`` handler, started and stopped with the lifespan."""

    def __init__(self, middleware: TraefikServiceMiddleware) -> None:
        self.middleware = middleware
        self.stats = ReloadStats()
        self.drain_timeout = DRAIN_TIMEOUT
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._last_issues: tuple[str, ...] = ()
        self._sighup = False
        self.loop_lag = loop_lag_from_env()  # opt-in: the longest stall of each reload

    # ------------------------------------------------------------------ reload
    async def reload(self, config: Config | None = None, *, trigger: str = "api") -> ReloadSummary:
        """Load (unless given ``config``), build to the side, swap, retire the old
        runtime. Raises ``ConfigError`` (and keeps the current configuration)."""
        async with self._lock:
            if self.loop_lag is not None:  # what came before, for comparison; then this one's
                logger.info(
                    "event loop: longest stall %.1f ms between reloads",
                    self.loop_lag.take() * 1000,
                )
            collecting = gc.isenabled()
            gc.disable()  # no collection while the new runtime is built (module docstring)
            summary: ReloadSummary | None = None
            try:
                summary = await self._reload(config, trigger)
            finally:
                if collecting:
                    if summary is not None and summary.applied:
                        gc.freeze()  # the runtimes alive now: out of the collector's way
                    gc.enable()
            return summary

    async def _reload(self, config: Config | None, trigger: str) -> ReloadSummary:
        mw = self.middleware
        started = time.perf_counter()
        previous, old_config = mw.runtime, mw.config
        try:
            new_config, summary, runtime, names = await run_paced(
                functools.partial(self._prepare, config, old_config, previous)
            )
        except ConfigError as error:
            self._failed(error, trigger)
            raise
        duration = time.perf_counter() - started
        if runtime is None:
            logger.log(
                logging.DEBUG if trigger == "file change" else logging.INFO,
                "configuration unchanged (%s)",
                trigger,
            )
            mw.config = new_config  # same values; keeps origins (lines) current
            return _replace(summary, duration=duration, applied=False)
        # On the loop, with no await in between: the reference swap.
        runtime.health_checks.adopt(previous.health_checks)
        mw.runtime = runtime
        mw.config = new_config
        if previous.health_checks.started or runtime.health_checks.started:
            runtime.start()
        summary = _replace(summary, nodes_reused=runtime.reused, duration=duration)
        stats = self.stats
        stats.reloads += 1
        stats.last_success = time.time()
        stats.last_summary = summary
        if mw.metrics is not None:  # traefik_config_reloads_total and its last success
            mw.metrics.record_reload(True)
            if names is not None:  # removed routers' and services' series go
                mw.metrics.outdated.set_configuration(names)
        self._last_issues = ()
        logger.info("configuration reloaded (%s): %s", trigger, summary)
        for issue in new_config.skipped:  # skip_invalid: what this load left out
            logger.error("skipped: %s", issue)
        self.spawn(retire(previous, runtime, self.drain_timeout))
        if self.loop_lag is not None:
            self.spawn(self._report_lag(trigger, self.loop_lag.take()))
        return summary

    def _prepare(
        self, config: Config | None, old_config: Config, previous: Runtime
    ) -> tuple[Config, ReloadSummary, Runtime | None, Configured | None]:
        """In a paced thread: read, validate, compare and build (None: nothing changed),
        and list the names the metrics keep series of (None: no metrics)."""
        mw = self.middleware
        if config is None:
            if mw.source is None:
                raise TypeError(
                    "this middleware was given a Config, not paths: pass reload(config)"
                )
            config = mw.options.load(mw.source)
        summary = summarize(old_config, config)
        if not summary.changed:
            return config, summary, None, None
        runtime = build_runtime(config, mw.options, mw.recorder, previous=previous)
        return config, summary, runtime, configured(config) if mw.metrics is not None else None

    def _failed(self, error: ConfigError, trigger: str) -> None:
        stats = self.stats
        stats.failures += 1
        stats.last_failure = time.time()
        issues = tuple(str(issue) for issue in error.issues)
        stats.last_error = "; ".join(issues)
        if issues == self._last_issues:
            logger.error(
                "configuration reload (%s) failed again with the same %d error(s); "
                "still serving the previous configuration",
                trigger,
                len(issues),
            )
            return
        self._last_issues = issues
        for issue in issues:
            logger.error("error: %s", issue)
        logger.error(
            "configuration reload (%s) failed with %d error(s); "
            "still serving the previous configuration",
            trigger,
            len(issues),
        )

    async def _report_lag(self, trigger: str, during: float) -> None:
        await asyncio.sleep(AFTER)
        if self.loop_lag is not None:
            logger.info(
                "event loop: longest stall %.1f ms during the reload (%s), %.1f ms in the "
                "second after",
                during * 1000,
                trigger,
                self.loop_lag.take() * 1000,
            )

    # ------------------------------------------------------------------ tasks
    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in the background, held until done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet_reload(self, trigger: str) -> None:
        with contextlib.suppress(ConfigError):  # logged and counted already
            try:
                await self.reload(trigger=trigger)
            except Exception:  # a bug must not kill the watcher or the gateway
                logger.exception("configuration reload (%s) failed", trigger)

    # ------------------------------------------------------------------ lifespan
    def enable_sighup(self) -> None:
        """Reload on ``SIGHUP`` once the lifespan starts (the ``serve`` command)."""
        self._sighup = True

    def start(self, *, watch: bool, throttle: float) -> None:
        """At lifespan startup: the watcher (``watch``) and the SIGHUP handler."""
        loop = asyncio.get_running_loop()
        if self.loop_lag is not None:
            self.loop_lag.start()
        if self._sighup and hasattr(signal, "SIGHUP"):
            try:
                loop.add_signal_handler(
                    signal.SIGHUP, lambda: self.spawn(self._quiet_reload("SIGHUP"))
                )
            except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
                logger.warning("SIGHUP cannot be handled here; reload on file changes only")
        source = self.middleware.source
        if watch and source is not None and self._watcher is None:
            self._stop = asyncio.Event()
            self._watcher = loop.create_task(
                self._watch(_paths_of(source), throttle, self._stop), name="config watcher"
            )

    async def aclose(self) -> None:
        """At shutdown: stop the watcher, close the runtimes still draining."""
        if self._sighup and hasattr(signal, "SIGHUP"):
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.loop_lag is not None:
            self.loop_lag.stop()
        if self._stop is not None:
            self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        self.drain_timeout = 0.0
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=10.0)

    async def _watch(self, paths: list[str], throttle: float, stop: asyncio.Event) -> None:
        from watchfiles import DefaultFilter, awatch

        roots = _watched_roots(paths)
        pending = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def listen() -> None:
            async for _changes in awatch(
                *roots,
                watch_filter=DefaultFilter(),
                step=int(QUIET_PERIOD * 1000),
                debounce=max(int(min(throttle, 1.6) * 1000), int(QUIET_PERIOD * 1000)),
                stop_event=stop,
                recursive=False,
            ):
                pending.set()

        listener = loop.create_task(listen(), name="config watcher events")
        listener.add_done_callback(_log_watcher_end)
        last = -float("inf")
        try:
            logger.info(
                "watching %s for changes (throttle %.3g s)", ", ".join(map(str, roots)), throttle
            )
            while True:
                await pending.wait()
                wait = last + throttle - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                pending.clear()  # what came meanwhile is read by this reload
                await self._quiet_reload("file change")
                last = loop.time()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


def _log_watcher_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the file watcher stopped", exc_info=task.exception())


def _paths_of(source: object) -> list[str]:
    if isinstance(source, (str, Path)):
        return [str(source)]
    return [str(p) for p in source]  # type: ignore[attr-defined]


def _replace(summary: ReloadSummary, **changes: object) -> ReloadSummary:
    import dataclasses

    return dataclasses.replace(summary, **changes)  # type: ignore[arg-type]
