"""What survives a reload: the built nodes of a runtime, by the *value* of what they were
built from.

A resolved service node (``ServersService``, ``WeightedService``, ``MirroringService``,
``FailoverService``, ``HRWService``) is a frozen dataclass whose children are nodes too.
Its :func:`node_key` is its whole resolved subtree as a hashable value, **without** the
fields that only say where it was written (``origin``: file, line, field path) or how it
was found (``source``, for ``check``). Two nodes with the same key build the same handler,
so a reload hands the new builder the previous runtime's :class:`BuiltNode` map and every
node whose key is found again keeps its handler object, and with it its state: a WRR
schedule continues its sequence, sticky cookies keep pinning, mirror counters keep
counting, health checkers keep probing (their tasks are adopted, see
``HealthChecks.adopt``). A node whose key changed in any way (a weight, a server URL, a
cookie option, a child anywhere below it, a health check interval, its ServersTransport)
is built from scratch, as Traefik builds every node on every reload; its unchanged
children are still reused. ServersTransports are keyed the same way: an unchanged one
keeps its client and connection pool.

A route's middlewares (one chain per router) are kept by :func:`route_key`: its name,
rule, priority, middlewares and service, by value. An unchanged route whose service
handler was kept keeps its chain, so its rate limiter's buckets, in-flight counts and
circuit breaker's window and state carry on; a route changed in any of those, or
whose service was rebuilt, gets new middleware instances.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from .config._pacing import checkpoint, release

if TYPE_CHECKING:
    from .config.models import Route

__all__ = ["IGNORED_FIELDS", "BuiltNode", "KeyMaker", "node_key", "route_key"]

IGNORED_FIELDS = frozenset({"origin", "source"})
"""Fields that never make a node "changed": where it was written, how it was found."""


class KeyMaker:
    """:func:`node_key` with a memo by identity, for the shared nodes of one config (the
    resolver shares a TraefikService node between all its references)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, Hashable]] = {}

    def release(self) -> None:
        """Empty the memo a few entries at a time, the last made (the parents) first:
        the keys of a 1,000-route configuration freed at once are one stretch of C
        that no other thread can interrupt (``config/_pacing.py``)."""
        release(self._memo)

    def __call__(self, value: Any) -> Hashable:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            hit = self._memo.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
            checkpoint()
            key: Hashable = (
                type(value).__name__,
                *(
                    self(getattr(value, f.name))
                    for f in dataclasses.fields(value)
                    if f.name not in IGNORED_FIELDS
                ),
            )
            self._memo[id(value)] = (value, key)
            return key
        if isinstance(value, tuple):
            return tuple(self(item) for item in value)
        hashable: Hashable = value  # str, int, float, bool, None: hashable as they are
        return hashable


def node_key(value: Any) -> Hashable:
    """The value of a resolved node (or ServersTransport) that decides reuse."""
    return KeyMaker()(value)


def route_key(route: Route, keys: KeyMaker) -> Hashable:
    """The value of a route that decides whether it keeps its middleware chain (the
    compiled rule is keyed by its text and syntax: its predicate is a new function)."""
    return (
        route.name,
        route.rule.text,
        route.rule.syntax,
        route.priority,
        keys(route.middlewares),
        keys(route.service),
    )


@dataclass(frozen=True, slots=True)
class BuiltNode:
    """One built service node and what came with it: whether its tree reads answers
    (mirrors need it), the health checkers it started itself (not its children's), and
    its children's nodes with their keys, in the order the resolved node lists them
    (so a later reload can still reuse a child of a node that changed)."""

    handler: ASGIApp
    reads: bool
    checkers: tuple[Any, ...] = ()
    children: tuple[tuple[Hashable, BuiltNode], ...] = ()
