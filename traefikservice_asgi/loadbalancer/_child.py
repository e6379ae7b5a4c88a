"""What every balancer (wrr, p2c, leasttime, hrw) is built from: named, weighted children.

Its own module because every strategy needs it and none owns it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import FunctionType

from starlette.types import ASGIApp

__all__ = ["Child", "direct_call"]


def direct_call(app: ASGIApp) -> ASGIApp:
    """What a parent (a balancer, a router, a middleware) calls to run ``app``: its bound
    ``__call__`` when its class defines one in Python, else ``app`` itself. CPython 3.11
    calls an instance through its type's call slot, in an interpreter loop of its own,
    and a bound method inline: about 700 instructions less per call (bench/README.md)."""
    if isinstance(inspect.getattr_static(app, "__call__", None), FunctionType):
        direct: ASGIApp = app.__call__  # type: ignore[operator]
        return direct
    return app


@dataclass(frozen=True, slots=True)
class Child:
    """One child of a balancer: its name (the sticky key), handler and weight."""

    name: str
    handler: ASGIApp
    weight: int = 1
