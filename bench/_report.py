"""Turning raw runs into ratios and a table.

Every ratio is taken inside one round (a target's req/s over the direct backend's, or over
Traefik's on the same route, measured minutes apart at most) and only then summarised
over rounds as a median with its min-max: the machine is shared, so absolute numbers drift
between rounds by tens of percent while same-round ratios stay comparable.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

Run = dict[str, Any]


def _counterpart(runs: list[Run], run: Run, **match: Any) -> Run | None:
    """The run of the same round, backend and concurrency as ``run``, with ``match``."""
    for other in runs:
        if (
            other["round"] == run["round"]
            and other["backend"] == run["backend"]
            and other["connections"] == run["connections"]
            and all(other[k] == v for k, v in match.items())
        ):
            return other
    return None


def _cpu_per_request(run: Run) -> float:
    return float(run["cpu_proxy"]) / max(int(run["wrk"]["requests"]), 1)


def add_ratios(runs: list[Run]) -> None:
    """Set ``vs_direct``, ``vs_traefik``, ``vs_naive``, ``vs_base`` (req/s ratios, same
    round), ``cpu_vs_traefik`` and ``cpu_vs_base`` (proxy CPU per request, same round) on
    every run."""
    for run in runs:
        direct = _counterpart(runs, run, proxy="direct")
        traefik = _counterpart(runs, run, proxy="traefik", route=run["route"])
        naive = _counterpart(runs, run, proxy="naive")
        base = _counterpart(runs, run, proxy="base", route=run["route"])
        rps = run["wrk"]["rps"]
        run["vs_direct"] = round(rps / direct["wrk"]["rps"], 4) if direct else None
        run["vs_traefik"] = round(rps / traefik["wrk"]["rps"], 4) if traefik else None
        ours = run["proxy"] == "ours"
        run["vs_base"] = round(rps / base["wrk"]["rps"], 4) if base and ours else None
        run["cpu_vs_traefik"] = (
            round(_cpu_per_request(run) / _cpu_per_request(traefik), 4)
            if traefik and run["proxy"] != "traefik" and _cpu_per_request(traefik) > 0
            else None
        )
        based = base is not None and ours and _cpu_per_request(base) > 0
        run["cpu_vs_base"] = (
            round(_cpu_per_request(run) / _cpu_per_request(base), 4) if based and base else None
        )
        if naive is None or run["proxy"] == "direct":
            run["vs_naive"] = None
        else:
            run["vs_naive"] = round(rps / naive["wrk"]["rps"], 4)


def _spread(values: Iterable[float | None], digits: int) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {
        "median": round(statistics.median(present), digits),
        "min": round(min(present), digits),
        "max": round(max(present), digits),
    }


def _per_1k(run: Run, cpu_s: float) -> float:
    requests: int = run["wrk"]["requests"]
    return 1000 * cpu_s / max(requests, 1)


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per target: medians (min-max) over rounds, in the targets' listing order."""
    order: list[str] = []
    groups: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r["target_index"]):
        if run["target"] not in groups:
            order.append(run["target"])
        groups.setdefault(run["target"], []).append(run)
    rows = []
    for name in order:
        group = groups[name]
        rows.append(
            {
                "target": name,
                "rounds": len(group),
                "rps": _spread((r["wrk"]["rps"] for r in group), 0),
                "p50_ms": _spread((r["wrk"]["p50_ms"] for r in group), 3),
                "p99_ms": _spread((r["wrk"]["p99_ms"] for r in group), 3),
                "vs_direct": _spread((r["vs_direct"] for r in group), 3),
                "vs_traefik": _spread((r["vs_traefik"] for r in group), 3),
                "cpu_vs_traefik": _spread((r.get("cpu_vs_traefik") for r in group), 3),
                "vs_naive": _spread((r["vs_naive"] for r in group), 3),
                "vs_base": _spread((r.get("vs_base") for r in group), 3),
                "cpu_vs_base": _spread((r.get("cpu_vs_base") for r in group), 3),
                "proxy_cpu_per_1k": _spread((_per_1k(r, r["cpu_proxy"]) for r in group), 3),
                "backend_cpu_per_1k": _spread((_per_1k(r, r["cpu_backends"]) for r in group), 3),
                "wrk_cpu_per_1k": _spread((_per_1k(r, r["wrk"]["cpu_s"]) for r in group), 3),
                "other_cpu_s": _spread((r["cpu_other"] for r in group), 2),
                "errors": sum(r["wrk"]["non_2xx"] + r["wrk"]["socket_errors"] for r in group),
            }
        )
    return rows


def _fmt(spread: dict[str, float] | None, digits: int, ranged: bool = True) -> str:
    if spread is None:
        return "-"
    median = f"{spread['median']:.{digits}f}"
    if not ranged or spread["min"] == spread["max"]:
        return median
    return f"{median} ({spread['min']:.{digits}f}-{spread['max']:.{digits}f})"


_HEADER = (
    "| target | req/s | p50 ms | p99 ms | x direct | x Traefik | CPU/req x Traefik | x naive "
    "| proxy CPU-s/1k req | backends CPU-s/1k | wrk CPU-s/1k | other CPU-s "
    "| errors (non-2xx + socket) |"
)


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: median (min-max) over rounds; CPU per 1000 requests. With a
    baseline run (``--baseline``), two more columns: this checkout's req/s and proxy CPU
    per request over the baseline's, same route and round."""
    based = any(row.get("vs_base") for row in rows)
    header = _HEADER + " x base | CPU/req x base |" * based
    lines = [header, "|---" + "|---:" * (12 + 2 * based) + "|"]
    for row in rows:
        cells = [
            row["target"],
            _fmt(row["rps"], 0),
            _fmt(row["p50_ms"], 2, ranged=False),
            _fmt(row["p99_ms"], 2, ranged=False),
            _fmt(row["vs_direct"], 2),
            _fmt(row["vs_traefik"], 2),
            _fmt(row.get("cpu_vs_traefik"), 2),
            _fmt(row["vs_naive"], 2),
            _fmt(row["proxy_cpu_per_1k"], 3, ranged=False),
            _fmt(row["backend_cpu_per_1k"], 3, ranged=False),
            _fmt(row["wrk_cpu_per_1k"], 3, ranged=False),
            _fmt(row["other_cpu_s"], 1, ranged=False),
            str(row["errors"]),
        ]
        if based:
            cells += [_fmt(row.get("vs_base"), 3), _fmt(row.get("cpu_vs_base"), 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
