"""Where mirror copies live: bounded in number, in memory and in time.

Traefik starts one goroutine per mirrored request with no limit and buffers every body it
copies; a slow mirror then piles up goroutines and memory until the process dies (issues
#6125 and #7533). Here every copy goes through one pool per gateway that enforces

* ``max_in_flight`` copies at once (default 1000),
* ``buffer_budget`` bytes of buffered bodies across all copies (default 64 MiB),
* ``timeout`` seconds per copy (default 30 s),

and drops what does not fit, counting each drop by reason and logging at most one
warning per reason every 10 s. The client's response never waits for any of it.

One request's copies are a :class:`CopyJob`. A job is in flight while one of its parts
runs: the task that walks the mirrors' service trees, and every *detached exchange*,
a request that a leaf wrote to a mirror and whose answer the transport discards on its
own (``GatewayTransport.send_detached``). A copy waiting for a slow mirror is then a
connection in the transport and this small object, not a suspended chain of coroutines
(why that matters under load: ``bench/README.md``, "What changed for the copies"). The
job's deadline cancels its tasks and aborts its exchanges alike; so does shutdown,
after a bounded wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DEFAULT_BUFFER_BUDGET",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "CopyJob",
    "MirrorLimits",
    "MirrorPool",
]

logger = logging.getLogger("traefikservice_asgi.mirror")

_LOG_EVERY = 10.0

DEFAULT_MAX_IN_FLIGHT = 1000
DEFAULT_BUFFER_BUDGET = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0


class Part(Protocol):
    """Something a job waits for and can stop: a task, or a detached exchange."""

    def cancel(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class MirrorLimits:
    """Safety limits for mirror copies (none of them exist in Traefik)."""

    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    buffer_budget: int = DEFAULT_BUFFER_BUDGET
    timeout: float = DEFAULT_TIMEOUT
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.buffer_budget < 0:
            raise ValueError(f"buffer_budget must be >= 0, got {self.buffer_budget}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")


class CopyJob:
    """One request's copies: in flight until its last part has ended.

    ``reserved`` bytes of the buffer budget go back to the pool when the job ends,
    whatever the outcome. Parts are added with :meth:`run` (a coroutine, as a task) and
    :meth:`attach` (an exchange the transport finishes on its own, reporting back with
    :meth:`detach`).
    """

    __slots__ = ("_open", "_parts", "_pool", "_timer", "expired", "reserved")

    def __init__(self, pool: MirrorPool, reserved: int, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self.reserved = reserved
        self.expired = False
        self._open = True  # takes new parts: not stopped, not ended
        self._parts: set[Part] = set()
        # A timer, not ``asyncio.wait_for``: that costs a second task per copy.
        self._timer: asyncio.TimerHandle | None = loop.call_later(pool.limits.timeout, self._expire)

    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a part of this job (not if the job was stopped or ended)."""
        if not self._open:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._parts.add(task)
        task.add_done_callback(self._task_done)

    def attach(self, part: Part) -> bool:
        """Count ``part`` (a detached exchange) as in flight; False if the job has
        been stopped or has ended: the caller must then not start it."""
        if not self._open:
            return False
        self._parts.add(part)
        return True

    def detach(self, part: Part) -> None:
        """``part`` has ended."""
        self._parts.discard(part)
        if not self._parts:
            self._end()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.debug("mirror copy failed", exc_info=task.exception())
        self.detach(task)

    def cancel(self) -> None:
        """Stop every part now (deadline or shutdown); the job ends when they have."""
        self._open = False
        for part in list(self._parts):
            part.cancel()
        if not self._parts:
            self._end()

    def _expire(self) -> None:
        self.expired = True
        self.cancel()

    def _end(self) -> None:
        self._open = False
        timer, self._timer = self._timer, None
        if timer is None:
            return
        timer.cancel()
        self._pool._ended(self)


class MirrorPool:
    """Owns every mirror copy of one gateway."""

    __slots__ = ("_idle", "_jobs", "_last_log", "buffered", "dropped", "limits", "sent")

    def __init__(self, limits: MirrorLimits | None = None) -> None:
        self.limits = limits or MirrorLimits()
        self.buffered = 0  # bytes of bodies held by copies now
        self.sent = 0
        self.dropped: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}
        self._jobs: set[CopyJob] = set()
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Copy jobs (one per mirrored request) not yet ended."""
        return len(self._jobs)

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the buffer budget; False (nothing taken) if over."""
        if self.buffered + size > self.limits.buffer_budget:
            return False
        self.buffered += size
        return True

    def release(self, size: int) -> None:
        self.buffered -= size

    def drop(self, reason: str) -> None:
        """Count a copy not sent, and say so now and then (never once per request)."""
        self.dropped[reason] += 1
        now = time.monotonic()
        if now - self._last_log.get(reason, -_LOG_EVERY) >= _LOG_EVERY:
            self._last_log[reason] = now
            logger.warning(
                "mirror copy dropped (%s); %d dropped for this reason so far",
                reason,
                self.dropped[reason],
            )

    def admit(self, reserved: int = 0) -> CopyJob | None:
        """A new job holding ``reserved`` bytes of budget, or None (the bytes released,
        the drop counted) when the cap on copies in flight is reached."""
        if len(self._jobs) >= self.limits.max_in_flight:
            self.release(reserved)
            self.drop("too many copies in flight")
            return None
        self.sent += 1
        job = CopyJob(self, reserved, asyncio.get_running_loop())
        self._jobs.add(job)
        return job

    def _ended(self, job: CopyJob) -> None:
        self._jobs.discard(job)
        self.release(job.reserved)
        if job.expired:
            self.drop(f"no answer within {self.limits.timeout:g} s")
        if not self._jobs and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no copy is in flight (or ``timeout``); True if none is."""
        if not self._jobs:
            return True
        if self._idle is None:  # one event for every waiter, set when the last job ends
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return not self._jobs
        return True

    async def aclose(self) -> None:
        """Let copies in flight finish for up to ``shutdown_timeout``, then stop them."""
        if not await self.wait_idle(self.limits.shutdown_timeout):
            logger.warning("cancelling %d mirror request(s) still in flight", len(self._jobs))
            for job in list(self._jobs):
                job.cancel()
            await self.wait_idle(self.limits.shutdown_timeout)
        if self.dropped:  # the rate-limited warnings showed a few; the totals, once
            summary = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common())
            logger.warning("mirror copies: %d sent, dropped: %s", self.sent, summary)
