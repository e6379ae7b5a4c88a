"""Waiting on a condition, never on the clock: poll ``predicate`` until it holds, and
fail the test (naming what was awaited) if it does not within ``timeout``."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["until"]


def until(
    predicate: Callable[[], object],
    what: str = "the condition",
    timeout: float = 10.0,
    interval: float = 0.05,
) -> None:
    """Return once ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)  # poll interval of a bounded wait on a condition
