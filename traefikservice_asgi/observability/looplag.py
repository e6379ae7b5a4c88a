"""How long the event loop stalls: a debug sampler for reloads (``bench/reload.py``).

Opt-in with the environment variable :data:`ENV_LOOP_LAG` (any non-empty value): a
timer callback re-armed every :data:`INTERVAL` seconds on the loop notes how late it
runs; the lateness is the time the loop spent on something else without yielding (a
callback, a coroutine step, the GIL held by another thread). After each applied reload
the reloader logs the longest stall from the reload's start to the swap, and the
longest in the :data:`AFTER` seconds past the swap (the old runtime's retirement
included), at info on ``traefikservice_asgi.reload``::

    event loop: longest stall 3.2 ms during the reload (SIGHUP), 2.5 ms in the second after

and, as each reload starts, the longest stall since the previous report (the same
load without a reload: the baseline to compare with)::

    event loop: longest stall 2.1 ms between reloads

Off by default: one timer callback every 5 ms is cheap, but not nothing.
"""

from __future__ import annotations

import asyncio
import os

__all__ = ["AFTER", "ENV_LOOP_LAG", "INTERVAL", "LoopLag", "loop_lag_from_env"]

ENV_LOOP_LAG = "TRAEFIKSERVICE_ASGI_LOOP_LAG"
INTERVAL = 0.005
"""Seconds between two samples."""
AFTER = 1.0
"""Seconds after a reload's swap still counted as the reload's."""


class LoopLag:
    """The longest lateness of a timer re-armed every ``interval`` seconds, since the
    last :meth:`take`."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.longest = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        late = now - self._due
        if late > self.longest:
            self.longest = late
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def take(self) -> float:
        """The longest stall (seconds) since the previous call, and start again."""
        longest, self.longest = self.longest, 0.0
        return longest

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def loop_lag_from_env() -> LoopLag | None:
    """A sampler if :data:`ENV_LOOP_LAG` asks for one."""
    return LoopLag() if os.environ.get(ENV_LOOP_LAG) else None
