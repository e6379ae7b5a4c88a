"""The owner of fire-and-forget work (mirror copies).

asyncio keeps only weak references to tasks, so a copy nobody holds can vanish mid-flight;
and a copy nobody waits for at shutdown is cut off with a "Task was destroyed" warning.
One owner holds every task strongly, can wait until the set is empty, and on shutdown
gives them a bounded time before cancelling what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTasks"]

logger = logging.getLogger("traefikservice_asgi.mirror")


class BackgroundTasks:
    """A set of running tasks with a bounded shutdown."""

    __slots__ = ("_idle", "_tasks", "started")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Event | None = None
        self.started = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        self.started += 1
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("background task failed", exc_info=task.exception())
        if not self._tasks and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no task is running (or ``timeout``); True if idle."""
        if not self._tasks:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return not self._tasks
        return True

    async def aclose(self, timeout: float) -> None:
        """Let running tasks finish for up to ``timeout`` seconds, then cancel the rest."""
        if not await self.wait_idle(timeout):
            tasks = list(self._tasks)
            logger.warning("cancelling %d mirror request(s) still in flight", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
