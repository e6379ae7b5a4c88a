"""Yield points in long configuration work, for a reload's loading thread.

A live reload reads, validates and builds a configuration in a thread while the event
loop serves. Both need the GIL, and CPython hands it over only every switch interval
(5 ms): while the thread works, each of the loop's iterations takes about twice as long
as it would (with 1,000 routes, stalls of 20-143 ms on a shared box, bench/README.md). The
loops over YAML nodes, documents, routes and service nodes call :func:`checkpoint`; a
thread that installed a hook with :func:`pacing` (``reload.py``'s, which lets the event
loop run an iteration every couple of milliseconds) is paced by it, every other caller
(``check``, the first load, tests) pays one attribute lookup per call. Large transient
structures are emptied with :func:`release`, so that freeing them is paced too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["checkpoint", "pacing", "release"]

STEP = 256
"""Items :func:`release` frees between two checkpoints."""

_local = threading.local()


def checkpoint() -> None:
    """A point where the work may pause: call the current thread's hook, if any."""
    hook: Callable[[], None] | None = getattr(_local, "hook", None)
    if hook is not None:
        hook()


@contextmanager
def pacing(hook: Callable[[], None]) -> Iterator[None]:
    """Call ``hook`` at each :func:`checkpoint` of this thread while in the block."""
    previous = getattr(_local, "hook", None)
    _local.hook = hook
    try:
        yield
    finally:
        _local.hook = previous


def release(items: dict[Any, Any] | list[Any]) -> None:
    """Empty ``items`` a few at a time, the last first, with a checkpoint between: a
    large structure dropped at once is freed in one stretch of C (CPython's
    deallocators) that no other thread can interrupt, 5-12 ms for the transient
    structures of a 1,000-route load. The last first: where later items were made from
    earlier ones (a memo's parents from their children), each frees little."""
    if isinstance(items, dict):
        while items:
            for _ in range(min(STEP, len(items))):
                items.popitem()
            checkpoint()
    else:
        while items:
            del items[-STEP:]
            checkpoint()
