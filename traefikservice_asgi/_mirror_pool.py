"""Where mirror copies live: bounded in number, in memory and in time.

Traefik starts one goroutine per mirrored request with no limit and buffers every body it
copies; a slow mirror then piles up goroutines and memory until the process dies (issues
#6125 and #7533). Here every copy goes through one pool per gateway that enforces

* ``max_in_flight`` copies at once (default 1000),
* ``buffer_budget`` bytes of buffered bodies across all copies (default 64 MiB),
* ``timeout`` seconds per copy (default 30 s),

and drops what does not fit, counting each drop by reason and logging at most one
warning per reason every 10 s. The client's response never waits for any of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from ._background import BackgroundTasks

__all__ = [
    "DEFAULT_BUFFER_BUDGET",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "COPY_KEY",
    "MirrorLimits",
    "MirrorPool",
    "is_copy",
]

logger = logging.getLogger("traefikservice_asgi.mirror")

_LOG_EVERY = 10.0

DEFAULT_MAX_IN_FLIGHT = 1000
DEFAULT_BUFFER_BUDGET = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0

# Set in the scope a mirror copy is sent with: its connection goes back to the copies'
# own idle pool (see GatewayTransport), not to the main requests' one.
COPY_KEY = "traefikservice_asgi.copy"


def is_copy(scope: Scope) -> bool:
    """Whether ``scope`` is a mirror copy's."""
    return COPY_KEY in scope


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


class MirrorPool:
    """Owns every mirror copy of one gateway."""

    __slots__ = ("_expired", "_last_log", "buffered", "dropped", "limits", "sent", "tasks")

    def __init__(self, limits: MirrorLimits | None = None) -> None:
        self.limits = limits or MirrorLimits()
        self.tasks = BackgroundTasks()
        self.buffered = 0  # bytes of bodies held by copies now
        self.sent = 0
        self.dropped: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}
        self._expired: set[asyncio.Task[None]] = set()

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

    def spawn(self, coro: Coroutine[Any, Any, None], reserved: int = 0) -> bool:
        """Run one request's copies in the background, within the limits.

        ``reserved`` bytes of budget taken by the caller are given back when the copies
        end, whatever the outcome. Returns False (and releases them) when over the cap.
        """
        if len(self.tasks) >= self.limits.max_in_flight:
            self.release(reserved)
            coro.close()
            self.drop("too many copies in flight")
            return False
        self.sent += 1
        task = self.tasks.spawn(coro)
        # The timeout is a timer that cancels the task, not ``asyncio.wait_for``: that
        # costs a second task per copy, and with a thousand copies in flight their
        # allocations alone made the garbage collector stall the main path.
        timer = task.get_loop().call_later(self.limits.timeout, self._expire, task)
        task.add_done_callback(functools.partial(self._finished, timer, reserved))
        return True

    def _expire(self, task: asyncio.Task[None]) -> None:
        if not task.done():
            self._expired.add(task)
            task.cancel()

    def _finished(
        self, timer: asyncio.TimerHandle, reserved: int, task: asyncio.Task[None]
    ) -> None:
        timer.cancel()
        self.release(reserved)
        if task in self._expired:
            self._expired.discard(task)
            self.drop(f"no answer within {self.limits.timeout:g} s")

    async def aclose(self) -> None:
        await self.tasks.aclose(self.limits.shutdown_timeout)
        if self.dropped:  # the rate-limited warnings showed a few; the totals, once
            summary = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common())
            logger.warning("mirror copies: %d sent, dropped: %s", self.sent, summary)
