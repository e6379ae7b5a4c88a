"""Traefik's ``highestRandomWeight`` service: rendezvous hashing on the client's IP.

Port of ``pkg/server/service/loadbalancer/hrw/hrw.go`` (Traefik 3.7). For each request,
every healthy child gets a score from the client's IP and the child's name, and the
highest score wins, so one client keeps reaching the same child (no cookie needed) and
clients spread over the children in proportion to their weights. Removing a child only
moves the clients that were on it.

The score, exactly as Go computes it, so that an IP reaches the same child here as in
Traefik::

    sum   = FNV-1a 64 (ip + child name)            # hash/fnv New64a
    score = float64(sum) / 2^64                    # in [0, 1)
    score = 1 / -math.Log(score) * weight          # Go's assembly Log on amd64

Python's ``math.log`` (the C library's) may differ from Go's in the last bit, and a
last-bit difference can flip a near-tie, so :func:`go_log` ports Go's (``log_amd64.s``,
the FreeBSD algorithm) operation for operation. The first child with the strictly
highest score wins; children are added in a random order, as Traefik shuffles them
(only an exact tie depends on it). The IP is the TCP peer's (Traefik's
``RemoteAddrStrategy``: ``X-Forwarded-For`` is not looked at), written as Go writes it:
an IPv4 address reached through a dual-stack socket (``::ffff:10.0.0.1``) is
``10.0.0.1``.

A child with weight <= 0 is dropped. Unhealthy children (:meth:`set_status`) are
skipped; with none left the answer is ``503 no available server``. As in Traefik a
child is UP until a status updater says otherwise. The CRD has no ``healthCheck`` on a
``highestRandomWeight`` TraefikService, so a configuration never asks it to follow its
children's health (a child whose servers are all down keeps its clients and answers
``503``); the hooks serve the Python API and keep Traefik's shape.

As the servers balancer of ``strategy: hrw``, ``fenced`` names the servers of
terminating endpoints still serving (Traefik's ``Server.Fenced``): no client is scored
onto them (their clients move to the next best server, as if they were gone), they count
as UP for the parents, and with nothing else UP the answer is ``503 no available
server``. HRW has no sticky cookie, so nothing reaches a fenced server.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from typing import ClassVar

from starlette.types import Receive, Scope, Send

from ..config.models import CookieOptions
from ..responses import send_go_error
from ._child import Child
from ._status import ChildStatus, StatusUpdater, StatusUpdaters

__all__ = ["BALANCER", "HighestRandomWeight", "client_ip", "fnv1a_64", "go_log", "score"]

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
_TWO_64 = 2.0**64


def fnv1a_64(data: bytes, start: int = _FNV_OFFSET) -> int:
    """FNV-1a, 64 bits (Go's ``hash/fnv.New64a``); ``start`` continues a running hash."""
    h = start
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


# Go's src/math/log_amd64.s (the same algorithm as log.go, with `f1 <= Sqrt2/2`).
_HSQRT2 = 7.07106781186547524401e-01
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_L1 = 6.666666666666735130e-01
_L2 = 3.999999999940941908e-01
_L3 = 2.857142874366239149e-01
_L4 = 2.222219843214978396e-01
_L5 = 1.818357216161805012e-01
_L6 = 1.531383769920937332e-01
_L7 = 1.479819860511658591e-01


def go_log(x: float) -> float:
    """Go's ``math.Log`` on amd64, bit for bit (for finite ``x`` >= 0)."""
    if x == 0:
        return -math.inf
    if x < 0 or math.isnan(x):
        return math.nan
    if math.isinf(x):
        return x
    f1, ki = math.frexp(x)
    k = float(ki)
    if f1 <= _HSQRT2:
        k -= 1.0
        f1 *= 2.0
    f = f1 - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (_L1 + s4 * (_L3 + s4 * (_L5 + s4 * _L7)))
    t2 = s4 * (_L2 + s4 * (_L4 + s4 * _L6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


def score(key_hash: int, name: bytes, weight: float) -> float:
    """Traefik's ``getNodeScore``: the score of child ``name`` for the client whose key
    (IP) hashed to ``key_hash`` (``fnv1a_64(key)``, the running hash of ``key + name``)."""
    value = fnv1a_64(name, key_hash) / _TWO_64
    denominator = -go_log(value)
    if denominator == 0.0:  # Go: 1.0 / -0.0 is -Inf (the hash rounded up to 1.0)
        return -math.inf
    return 1.0 / denominator * weight


def client_ip(scope: Scope) -> str:
    """The TCP peer's address as Go's ``net.SplitHostPort(req.RemoteAddr)`` gives it."""
    client = scope.get("client")
    if not client:
        return ""
    host = str(client[0])
    if host.startswith("::ffff:") and "." in host:
        return host[7:]  # Go prints an IPv4-mapped IPv6 address as IPv4
    return host


class _Entry:
    __slots__ = ("handler", "name", "name_bytes", "picks", "weight")

    def __init__(self, child: Child) -> None:
        self.name = child.name
        self.name_bytes = child.name.encode()
        self.handler = child.handler
        self.weight = float(child.weight)
        self.picks = 0  # requests handed to this child (metrics, own.py)


class HighestRandomWeight:
    """An ASGI app that hands each client to the child with the highest score for it."""

    __slots__ = ("_entries", "_pickable", "_status", "name")

    reads_answers: ClassVar[bool] = False
    """False: picks a child from the client's IP alone, so a mirror copy through it may
    be detached (see :mod:`traefikservice_asgi.builder`)."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        sticky: CookieOptions | None = None,
        rng: random.Random | None = None,
        health_check: bool = False,
        fenced: Collection[str] = (),
        name: str = "",
    ) -> None:
        if sticky is not None:  # the config layer drops it with a warning
            raise ValueError("hrw keeps a client on its server by IP: sticky must be None")
        self.name = name
        order = list(children)
        (rng or random.Random()).shuffle(order)
        self._entries = [_Entry(c) for c in order if c.weight > 0]
        self._status = ChildStatus(
            (e.name for e in self._entries),
            StatusUpdaters(enabled=health_check, kind="HRW"),
            fenced,
        )
        self._pickable = self._status.pickable  # the same set, read on every request

    def register_status_updater(self, updater: StatusUpdater) -> None:
        """Call ``updater(up)`` when the balancer goes from some child UP to none, or
        back. As in Traefik, only a balancer built with a health check reports it."""
        self._status.updaters.register(updater)

    def set_status(self, child: str, up: bool) -> None:
        """Mark a child healthy or not (Traefik's ``SetStatus``)."""
        self._status.set(child, up)

    @property
    def sticky(self) -> None:
        """Never sticky (it keeps a client by IP)."""
        return None

    def picks(self) -> list[tuple[str, int, float]]:
        """(child, requests handed to it, weight) for each child that can be picked."""
        return [(e.name, e.picks, e.weight) for e in self._entries]

    def pick(self, ip: str) -> str | None:
        """The name of the child that serves client ``ip``, or None if none is UP
        and unfenced."""
        entry = self._pick(ip)
        return entry.name if entry is not None else None

    def _pick(self, ip: str) -> _Entry | None:
        key_hash = fnv1a_64(ip.encode())
        best: _Entry | None = None
        best_score = 0.0
        pickable = self._pickable
        for entry in self._entries:
            if entry.name not in pickable:
                continue
            s = score(key_hash, entry.name_bytes, entry.weight)
            if s > best_score:
                best, best_score = entry, s
        return best

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self._pick(client_ip(scope))
        if entry is None:
            await send_go_error(send, 503, "no available server")
            return
        entry.picks += 1
        await entry.handler(scope, receive, send)


BALANCER = HighestRandomWeight
"""The class serving ``strategy: hrw`` (config.models.STRATEGIES)."""
