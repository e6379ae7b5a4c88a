"""Go's ``container/heap``, sift for sift.

Traefik's weighted round robin keeps its children in a Go binary heap ordered by a float64
deadline with a strict ``<`` and no tie breaker, so *which* child wins a tie depends on the
exact positions Go's ``up``/``down`` leave the entries in. Python's :mod:`heapq` sifts
differently and would pick other children on ties (e.g. for weights 3:5:7), so the
balancer uses this port instead. Only the operations Traefik calls are provided.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class _HasDeadline(Protocol):
    deadline: float


T = TypeVar("T", bound=_HasDeadline)


def _up(a: list[T], j: int) -> None:
    while True:
        i = (j - 1) // 2 if j > 0 else 0  # Go's int division truncates: (0-1)/2 == 0
        if i == j or not a[j].deadline < a[i].deadline:
            break
        a[i], a[j] = a[j], a[i]
        j = i


def _down(a: list[T], i0: int, n: int) -> None:
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n or j1 < 0:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and a[j2].deadline < a[j1].deadline:
            j = j2
        if not a[j].deadline < a[i].deadline:
            break
        a[i], a[j] = a[j], a[i]
        i = j


def push(a: list[T], x: T) -> None:
    """``heap.Push``: append, then sift up."""
    a.append(x)
    _up(a, len(a) - 1)


def pop(a: list[T]) -> T:
    """``heap.Pop``: swap the root with the last entry, sift down, remove the last."""
    n = len(a) - 1
    a[0], a[n] = a[n], a[0]
    _down(a, 0, n)
    return a.pop()


def pop_in_place(a: list[T]) -> T:
    """``heap.Pop`` leaving the popped entry at the end of ``a``, to be pushed back by
    :func:`push_in_place`: Traefik's pick pops an entry and pushes it again, and removing
    then appending the same last entry changes nothing but costs two calls."""
    n = len(a) - 1
    a[0], a[n] = a[n], a[0]
    _down(a, 0, n)
    return a[n]


def push_in_place(a: list[T]) -> None:
    """``heap.Push`` of the entry :func:`pop_in_place` left at the end of ``a``."""
    _up(a, len(a) - 1)
