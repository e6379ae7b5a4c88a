"""An event loop that records the timers scheduled on it, for tests proving that a code
path schedules no timer per request (a ``call_later`` per request is a libuv handle each
under uvloop)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["TimerRecordingLoop"]


class TimerRecordingLoop(asyncio.SelectorEventLoop):
    """asyncio's loop; ``timers`` lists the class of the object whose bound method each
    scheduled timer calls (``None`` for plain functions), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[type | None] = []

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        owner = getattr(callback, "__self__", None)
        self.timers.append(None if owner is None else type(owner))
        return super().call_at(when, callback, *args, context=context)

    def scheduled_by(self, kind: type, since: int = 0) -> int:
        """How many timers instances of ``kind`` scheduled from index ``since`` on."""
        return sum(
            1 for owner in self.timers[since:] if owner is not None and issubclass(owner, kind)
        )
