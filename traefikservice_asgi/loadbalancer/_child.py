"""What every balancer (wrr, p2c, leasttime, hrw) is built from: named, weighted children.

Its own module because every strategy needs it and none owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp

__all__ = ["Child"]


@dataclass(frozen=True, slots=True)
class Child:
    """One child of a balancer: its name (the sticky key), handler and weight."""

    name: str
    handler: ASGIApp
    weight: int = 1
