"""Traefik's way with an invalid resource: leave it out, report it, load the rest.

Traefik's kubernetesCRD provider logs an error and drops what it cannot use (a
Middleware, a TraefikService, an IngressRoute with a bad ``parentRefs``), and for an
IngressRoute only the route that is wrong (a Middleware reference it refuses, a bad
service): its siblings are served. A router whose middleware does not exist, or cannot
be built, is kept in its dynamic configuration but not served. :func:`load_skipping`
gives that outcome from a loader that refuses the whole load: the units (objects or YAML
documents) that the issues of a failed load lie in are left out, or only the routes the
issues lie in, and the load is tried again, at most once per unit and route. What was
left out because of what was left out before (a route naming a Middleware that was
dropped) goes the same way, as Traefik's router is then not served.

The Kubernetes provider loads API objects so (:mod:`.kubernetes`), and
``load_config(..., skip_invalid=True)`` loads files so (:mod:`.loader`). No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ..exceptions import ConfigError, ConfigIssue
from .models import Config

__all__ = ["keep_routes", "load_skipping", "route_lines"]

K = TypeVar("K", bound=Hashable)

_ROUTE_PATH = re.compile(r"spec\.routes\[(\d+)\](?=$|[.\[])")


def _routes(data: object) -> list[Any] | None:
    spec = data.get("spec") if isinstance(data, Mapping) else None
    routes = spec.get("routes") if isinstance(spec, Mapping) else None
    return routes if isinstance(routes, list) else None


def keep_routes(data: Any, indices: Sequence[int] | None) -> Any:
    """``data`` (an object, or a YAML document's data) with only the routes at the
    original ``indices`` (None: as it is)."""
    routes = _routes(data) if indices is not None else None
    if routes is None or indices is None:
        return data
    return {**data, "spec": {**data["spec"], "routes": [routes[i] for i in indices]}}


def route_lines(
    lines: Mapping[tuple[str | int, ...], int], indices: Sequence[int] | None
) -> dict[tuple[str | int, ...], int]:
    """A document's map from field path to line (:class:`~._yaml.Document`) for the
    routes at ``indices`` only, renumbered as :func:`keep_routes` renumbers them: every
    kept value keeps its own line."""
    if indices is None:
        return dict(lines)
    new = {old: i for i, old in enumerate(indices)}
    kept: dict[tuple[str | int, ...], int] = {}
    for path, line in lines.items():
        if len(path) > 2 and path[:2] == ("spec", "routes") and isinstance(path[2], int):
            if path[2] in new:
                renumbered = ("spec", "routes", new[path[2]], *path[3:])
                kept[renumbered] = line
        else:
            kept[path] = line
    return kept


def _failed_routes(data: object, issues: list[ConfigIssue], count: int) -> set[int] | None:
    """The routes (of the ``count`` the unit still has) that ``issues`` all lie in, when
    it keeps one without them: Traefik skips a route (its router is not served), not the
    IngressRoute. None: the unit is left out whole (another kind, or an issue outside its
    routes, as a bad ``parentRefs``, which Traefik also skips the IngressRoute for)."""
    if not isinstance(data, Mapping) or data.get("kind") != "IngressRoute":
        return None
    failed = set()
    for issue in issues:
        match = _ROUTE_PATH.match(issue.path or "")
        if match is None:
            return None
        failed.add(int(match.group(1)))
    return failed if len(failed) < count else None


def _in_original(issue: ConfigIssue, indices: Sequence[int] | None) -> ConfigIssue:
    """``issue`` with its route index the one of the unit as given, when earlier rounds
    left routes out (``indices``: the original index of each kept one)."""
    match = _ROUTE_PATH.match(issue.path or "") if indices is not None else None
    if match is None or indices is None:
        return issue
    path = f"spec.routes[{indices[int(match.group(1))]}]{(issue.path or '')[match.end() :]}"
    return replace(issue, path=path)


def load_skipping(
    units: Mapping[K, object],
    load: Callable[[Mapping[K, Sequence[int] | None]], Config],
    unit_of: Callable[[ConfigIssue], K | None],
) -> tuple[Config, tuple[ConfigIssue, ...]]:
    """The configuration ``load`` gives for as many of ``units`` (each one's data, as an
    API object or a YAML document has it) as load, and the issues of what was left out,
    their route indices the original ones. ``load`` gets the units to load, each with the
    original index of every route it keeps (None: all, or it has none), and raises :class:`ConfigError`; ``unit_of`` says
    which unit an issue lies in (None: in none, as a missing file). Raises the
    :class:`ConfigError` of a load whose issues lie in no unit left."""
    kept: dict[K, Sequence[int] | None] = dict.fromkeys(units)
    skipped: list[ConfigIssue] = []
    routes = sum(len(_routes(data) or ()) for data in units.values())
    for _ in range(len(units) + routes + 1):
        try:
            return load(kept), tuple(skipped)
        except ConfigError as exc:
            bad: dict[K, list[ConfigIssue]] = {}
            for issue in exc.issues:
                key = unit_of(issue)
                if key is not None and key in kept:
                    bad.setdefault(key, []).append(issue)
            if not bad:
                raise
            for key, issues in bad.items():
                indices = kept[key]
                skipped.extend(_in_original(issue, indices) for issue in issues)
                data = units[key]
                current = list(indices) if indices is not None else None
                if current is None:
                    current = list(range(len(_routes(data) or ())))
                failed = _failed_routes(data, issues, len(current))
                if failed is None:
                    del kept[key]
                else:
                    kept[key] = [old for i, old in enumerate(current) if i not in failed]
    raise AssertionError("unreachable: every round leaves something out")  # pragma: no cover
