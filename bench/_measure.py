"""Measuring one run: wrk's output, CPU seconds per process, and the machine's idleness.

CPU comes from ``/proc/<pid>/stat`` (utime + stime, summed over the process and its
descendants, so a multi-worker gateway counts whole) read before and after a run; wrk's own
CPU from ``getrusage(RUSAGE_CHILDREN)``, since wrk is a child that has exited and been
reaped by then (the long-lived servers are reaped only at the very end, so they do not
pollute that counter). The machine-wide busy time from ``/proc/stat`` gives "other": CPU
used during a run by anything that is not ours.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run reported (latencies in ms)."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_s: float
    """wrk's own user + system CPU seconds."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WrkError(RuntimeError):
    """wrk failed or printed something this parser does not understand."""


def parse_wrk(output: str, cpu_s: float = 0.0) -> WrkResult:
    """Parse the text of ``wrk --latency``; raise WrkError on anything missing."""
    latencies = {pct: float(v) * _UNITS[u] for pct, v, u in _LATENCY.findall(output)}
    requests, rps = _REQUESTS.search(output), _RPS.search(output)
    if requests is None or rps is None or len(latencies) < 4:
        raise WrkError(f"cannot parse wrk output:\n{output}")
    socket = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=int(requests.group(1)),
        seconds=float(requests.group(2)) * _UNITS[requests.group(3)] / 1e3,
        rps=float(rps.group(1)),
        p50_ms=latencies["50"],
        p75_ms=latencies["75"],
        p90_ms=latencies["90"],
        p99_ms=latencies["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        cpu_s=cpu_s,
    )


def run_wrk(
    url: str, *, threads: int, connections: int, seconds: float, headers: list[str]
) -> tuple[WrkResult, str]:
    """Run wrk once (bounded by a timeout well above ``seconds``); its result and raw text."""
    # wrk takes whole seconds only: "-d4.375s" makes it exit 1 without a word.
    duration = max(1, round(seconds))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    before = _children_cpu()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    cpu = _children_cpu() - before
    if done.returncode != 0:
        raise WrkError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return parse_wrk(done.stdout, cpu), done.stdout


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- per-process CPU ------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def process_tree_cpu(pid: int, tree: dict[int, list[int]] | None = None) -> float:
    """utime + stime (seconds) of ``pid`` and all its live descendants."""
    tree = _children_of() if tree is None else tree
    total, stack, seen = 0.0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        fields = _stat_fields(current)
        if fields is not None:
            # after the name: state(0) ppid(1) ... utime(11) stime(12)
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        stack.extend(tree.get(current, []))
    return total


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, plus the machine's busy time."""
    tree = _children_of()
    snapshot = {role: process_tree_cpu(pid, tree) for role, pid in pids.items()}
    snapshot["machine"] = machine_busy_seconds()
    return snapshot


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-role CPU seconds between two snapshots."""
    return {role: round(after[role] - before[role], 3) for role in before}


# -- the machine ----------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """Busy CPU seconds of all cores since boot (everything but idle, iowait and steal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def wait_drained(
    pids: list[int], max_wait: float, threshold: float = 0.05, window: float = 0.2
) -> float:
    """Wait (at most ``max_wait`` s) until our own processes are idle; seconds waited.

    A proxy may still be working when wrk stops: mirror copies are sent after the main
    response, and requests wrk abandoned are still being answered. The next target must
    not start on a gateway still busy with the previous one's leftovers (unlike the
    machine-wide quiet wait, this one does not depend on other people's load). The CPU
    spent meanwhile is recorded apart (``cpu_drain``): per-request CPU is the steady state
    during the run, as in the reference benchmark.
    """
    start = time.monotonic()
    while True:
        tree = _children_of()
        before, t0 = sum(process_tree_cpu(p, tree) for p in pids), time.monotonic()
        time.sleep(window)  # sampling window of a bounded wait
        tree = _children_of()
        used = sum(process_tree_cpu(p, tree) for p in pids) - before
        waited = time.monotonic() - start
        if used / (time.monotonic() - t0) < threshold or waited >= max_wait:
            return round(waited, 2)


@dataclass(frozen=True, slots=True)
class Quiet:
    """How long we waited for the machine to calm down, and how busy it was at the end."""

    waited_s: float
    busy_cores: float
    quiet: bool


def wait_quiet(max_wait: float, threshold: float = 0.3, window: float = 0.25) -> Quiet:
    """Wait (at most ``max_wait`` s) until the machine uses < ``threshold`` cores.

    The reference benchmark did the same before each run: the machine is shared, and a
    run that starts while a mirror backlog or someone else's job is still burning CPU
    measures them too. With ``max_wait`` 0 only one window is sampled.
    """
    start = time.monotonic()
    while True:
        before, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(window)  # sampling window of a bounded wait
        busy = (machine_busy_seconds() - before) / (time.monotonic() - t0)
        waited = time.monotonic() - start
        if busy < threshold or waited >= max_wait:
            return Quiet(round(waited, 2), round(busy, 2), busy < threshold)
