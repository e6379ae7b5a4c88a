"""How health travels up a service tree: Traefik's ``StatusSetter`` / ``StatusUpdater``.

Shared by every balancer (wrr, hrw, failover, mirroring), so the rules live once:

* A balancer's parents learn its health through *status updaters*: callbacks
  ``updater(up)`` registered with :meth:`StatusUpdaters.register`. Only a balancer built
  with a health check accepts them (Traefik's ``RegisterStatusUpdater`` answers
  "healthCheck not enabled in config for this ... service" otherwise), so a parent that
  wants its children's health must find it enabled all the way down.
* Updaters are called only when the balancer's own aggregate flips (some child UP to
  none, or back): a second server going down behind one already down tells nobody.

:class:`ChildStatus` is the set of healthy children of a wrr or hrw balancer (all UP at
the start, as in Traefik), with the flip detection, and the set a pick may choose from:
the healthy children that are not fenced (Traefik's ``Server.Fenced``: a terminating
endpoint still serving, UP for the parents, never picked). Failover and mirroring keep
their own state and use :class:`StatusUpdaters` for the parents' side only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Protocol, runtime_checkable

from ..exceptions import HealthCheckNotEnabled

__all__ = [
    "ChildStatus",
    "StatusUpdater",
    "StatusUpdaterSource",
    "StatusUpdaters",
]

StatusUpdater = Callable[[bool], None]
"""A parent's hook: called with the child's new aggregate status (True: UP)."""


@runtime_checkable
class StatusUpdaterSource(Protocol):
    """A handler whose health a parent can follow (Traefik's ``healthcheck.StatusUpdater``)."""

    def register_status_updater(self, updater: StatusUpdater) -> None: ...


class StatusUpdaters:
    """The parents' hooks of one balancer; ``kind`` names it in the refusal message."""

    __slots__ = ("_enabled", "_kind", "_updaters")

    def __init__(self, *, enabled: bool, kind: str) -> None:
        self._enabled = enabled
        self._kind = kind
        self._updaters: list[StatusUpdater] = []

    @property
    def enabled(self) -> bool:
        return self._enabled

    def register(self, updater: StatusUpdater) -> None:
        """Add a parent's hook, or refuse as Traefik does without a health check."""
        if not self._enabled:
            raise HealthCheckNotEnabled(
                f"healthCheck not enabled in config for this {self._kind} service"
            )
        self._updaters.append(updater)

    def notify(self, up: bool) -> None:
        """Tell every parent the new aggregate status (call only when it flipped)."""
        for updater in self._updaters:
            updater(up)


class ChildStatus:
    """The healthy children of a balancer, reporting to its parents when the balancer
    as a whole goes down (no child UP) or comes back (Traefik's ``SetStatus``).

    ``pickable`` is ``up`` without the ``fenced`` children: the very same set when
    nothing is fenced, so a balancer's pick reads one set either way and fencing costs
    nothing per request when unused."""

    __slots__ = ("fenced", "pickable", "up", "updaters")

    def __init__(
        self, children: Iterable[str], updaters: StatusUpdaters, fenced: Collection[str] = ()
    ) -> None:
        self.up: set[str] = set(children)
        self.updaters = updaters
        self.fenced = frozenset(name for name in fenced if name in self.up)
        self.pickable = self.up - self.fenced if self.fenced else self.up

    def set(self, child: str, up: bool) -> None:
        before = bool(self.up)
        if up:
            self.up.add(child)
        else:
            self.up.discard(child)
        if self.pickable is not self.up and child not in self.fenced:
            if up:
                self.pickable.add(child)
            else:
                self.pickable.discard(child)
        after = bool(self.up)
        if before != after:
            self.updaters.notify(after)
