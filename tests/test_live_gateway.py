"""Live configuration against the real gateway: ``traefikservice-asgi serve`` in its own
process, real backends on 127.0.0.x, the file rewritten under load, SIGHUP with one and
two workers (the same PIDs before and after)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.traefik import free_port
from tests.support.wait import until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP")

THROTTLE = 0.2
CONVERGE = THROTTLE + 1.0  # the acceptance bound: the throttle plus one second


def weighted(weights: dict[str, int], *, extra_route: bool = False, invalid: bool = False) -> str:
    services = ", ".join(
        f"{{name: {name}, port: 80, weight: {-1 if invalid and i == 0 else w}}}"
        for i, (name, w) in enumerate(weights.items())
    )
    extra = (
        "\n    - match: Host(`x.test`)\n      services: [{name: c, port: 80}]"
        if extra_route
        else ""
    )
    return f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`w.test`)
      services: [{{name: canary, kind: TraefikService}}]{extra}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: canary, namespace: default}}
spec:
  weighted:
    services: [{services}]
"""


def write(path: Path, text: str) -> None:
    """As an editor or kubectl would leave it: the whole file at once (rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def backends() -> Iterator[dict[str, RecordingBackend]]:
    started = {
        name: RecordingBackend(name, host=f"127.0.0.{i}").start()
        for i, name in enumerate("abc", start=2)
    }
    try:
        yield started
    finally:
        for backend in started.values():
            backend.stop()


@contextlib.contextmanager
def serve(
    path: Path, urls: dict[str, str], *args: str, log_file: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``serve PATH`` on a free port, its output in ``log_file`` (default: PATH with
    the suffix ``.log``)."""
    log_file = log_file or path.with_suffix(".log")
    port = free_port()
    command = [
        sys.executable, "-m", "traefikservice_asgi", "serve", str(path),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", *args,
    ]  # fmt: skip
    for name, url in urls.items():
        command += ["--backend", f"default/{name}:80={url}"]
    log = log_file.open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_file.read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "ready.invalid"}, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def served_by(port: int, n: int, host: str = "w.test") -> Counter[str]:
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=5) as client:
        for _ in range(n):
            # A new connection each time: with several workers, the kernel spreads them.
            response = client.get(
                f"http://127.0.0.1:{port}/", headers={"Host": host, "Connection": "close"}
            )
            seen[
                response.text.strip().removeprefix("Hello ")
                if response.status_code == 200
                else str(response.status_code)
            ] += 1
    return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_every_worker_in_place(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "live.yaml"
    write(path, weighted({"a": 1}))
    with backends() as started:
        urls = {name: b.url for name, b in started.items()}
        with serve(path, urls, "--no-watch", "--workers", str(workers)) as (proc, port):
            log = path.with_suffix(".log")
            until(
                lambda: log.read_text().count("Application startup complete") >= workers,
                "every worker started",
                timeout=30,
            )
            before = children(proc.pid)
            assert served_by(port, 10) == {"a": 10}
            write(path, weighted({"b": 1}))
            # --no-watch: nothing until SIGHUP, for as long as a watching gateway takes
            # to apply a change (CONVERGE), checked all along rather than once after.
            window = time.monotonic() + CONVERGE
            while time.monotonic() < window:
                assert served_by(port, 10) == {"a": 10}
            for round_ in range(2):
                proc.send_signal(signal.SIGHUP)
                reloads = (round_ + 1) * workers  # every worker logs its reload
                until(
                    lambda n=reloads: log.read_text().count("configuration reloaded (SIGHUP)") >= n,
                    f"{reloads} SIGHUP reloads logged",
                )
                expected = "b" if round_ == 0 else "a"
                assert served_by(port, 20) == {expected: 20}
                write(path, weighted({"a": 1}))
            assert proc.poll() is None
            assert children(proc.pid) == before  # no worker restarted
            assert len(before) >= (workers if workers > 1 else 0)
    output = path.with_suffix(".log").read_text()
    assert output.count("configuration reloaded (SIGHUP)") == 2 * workers, output


async def _client(port: int, stop: list[float], log: list[tuple[float, float, int, str]]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while time.monotonic() < stop[0]:
            started = time.monotonic()
            try:
                response = await client.get("/", headers={"Host": "w.test"})
                status, text = response.status_code, response.text.strip()
            except httpx.HTTPError as error:
                status, text = 0, repr(error)
            log.append((started, time.monotonic(), status, text.removeprefix("Hello ")))


SETTLED = 100
"""Answers a version's settled window collects before the next write."""


async def _answered(
    log: list[tuple[float, float, int, str]], start: int, count: int, *, since: float
) -> None:
    """Wait until ``log[start:]`` holds ``count`` answers begun at ``since`` or later."""
    deadline = time.monotonic() + CONVERGE + 30
    while sum(1 for entry in log[start:] if entry[0] >= since) < count:
        assert time.monotonic() < deadline, (len(log), start, count)
        await asyncio.sleep(0.05)  # poll interval of a bounded wait on a condition


def test_sixty_four_clients_while_the_file_is_rewritten_twenty_times(tmp_path: Path) -> None:
    versions: list[dict[str, int] | None] = []  # None: an invalid version
    plan = [
        {"a": 9, "b": 1}, {"a": 1, "b": 1}, {"a": 1, "b": 3}, {"b": 1}, {"b": 1, "c": 1},
        None, {"a": 1, "c": 3}, {"a": 1}, {"a": 3, "b": 1, "c": 1}, {"c": 1},
        {"a": 1, "b": 1}, {"b": 2, "c": 1}, None, {"a": 5, "b": 5}, {"a": 1, "b": 4},
        {"b": 1}, {"a": 1, "c": 1}, {"c": 2, "a": 1}, {"a": 1, "b": 9}, {"a": 1},
    ]  # fmt: skip
    assert len(plan) == 20
    path = tmp_path / "live.yaml"
    write(path, weighted({"a": 1}))
    with backends() as started:
        urls = {name: b.url for name, b in started.items()}
        with serve(path, urls, "--throttle", str(THROTTLE)) as (proc, port):
            log: list[tuple[float, float, int, str]] = []
            times: list[float] = []
            versions = [{"a": 1}]
            times.append(time.monotonic())
            stop = [time.monotonic() + 10.0 + (CONVERGE + 30) * len(plan)]  # a bound; set when done

            async def run() -> None:
                clients = [asyncio.create_task(_client(port, stop, log)) for _ in range(64)]
                await _answered(log, 0, 64, since=0.0)  # the load is on
                for i, weights in enumerate(plan):
                    previous = next(v for v in reversed(versions) if v is not None)
                    text = (
                        weighted(previous, extra_route=i % 2 == 0, invalid=True)
                        if weights is None
                        else weighted(weights, extra_route=i % 2 == 0)
                    )
                    write(path, text)
                    times.append(time.monotonic())
                    versions.append(weights)
                    # This version's settled window: answers begun CONVERGE after the
                    # write, enough of them for the split's check below.
                    await _answered(log, len(log), SETTLED, since=times[-1] + CONVERGE)
                stop[0] = time.monotonic()
                await asyncio.wait_for(asyncio.gather(*clients), timeout=30)

            asyncio.run(run())
            assert proc.poll() is None
    output = path.with_suffix(".log").read_text()
    failed = [entry for entry in log if entry[2] != 200]
    assert not failed, failed[:5]
    assert len(log) > 1000

    # The valid configuration in force at each write (an invalid one keeps the last).
    effective: list[dict[str, int]] = []
    for weights in versions:
        effective.append(weights if weights is not None else effective[-1])
    # Every answer came from a backend of a configuration that may have been in force
    # during that request: version j from its write until the next one's plus CONVERGE.
    bounds = [*times[1:], float("inf")]
    for started_at, ended_at, _, backend in log:
        possible = [
            effective[j]
            for j in range(len(times))
            if times[j] <= ended_at and bounds[j] + CONVERGE >= started_at
        ]
        assert any(backend in weights for weights in possible), (started_at, backend, possible)
    for k in range(len(times)):
        end = times[k + 1] if k + 1 < len(times) else stop[0]
        window = [e for e in log if times[k] <= e[0] < end]
        if k == 0:
            continue  # the configuration at startup
        # Converged within the throttle plus 1 s: only this version's backends, its split.
        settled = [e[3] for e in window if e[0] >= times[k] + CONVERGE and e[1] < end]
        assert len(settled) >= 10, (k, len(settled))
        counts = Counter(settled)
        assert set(counts) <= set(effective[k]), (k, counts, effective[k])
        total = sum(effective[k].values())
        for name, weight in effective[k].items():
            # WRR is exact over its cycle: a window is off by a pick or two at its ends.
            expected = len(settled) * weight / total
            assert abs(counts[name] - expected) <= 2 + 0.05 * len(settled), (
                k,
                counts,
                effective[k],
            )
    assert output.count("configuration reloaded (file change)") >= 17, output[-3000:]
    assert output.count("failed with") == 2, output[-3000:]


def configmap_update(mount: Path, files: dict[str, str], stamp: int) -> None:
    """What the kubelet's atomic writer does to a ConfigMap volume: the files in a new
    hidden timestamped folder, a ``..data_tmp`` symlink to it renamed over ``..data``
    (one atomic swap), the old folder removed; each visible file is a symlink through
    ``..data``, made once."""
    folder = mount / f"..2026_12_07_20_00_{stamp:02d}.{1000 + stamp}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    data = mount / "..data"
    old = data.resolve() if data.is_symlink() else None
    tmp = mount / "..data_tmp"
    tmp.symlink_to(folder.name)
    os.replace(tmp, data)
    for name in files:
        link = mount / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if old is not None:
        for child in old.iterdir():
            child.unlink()
        old.rmdir()


@pytest.mark.parametrize("given", ["folder", "file"])
def test_a_configmap_symlink_swap_is_seen_and_applied(tmp_path: Path, given: str) -> None:
    mount = tmp_path / "configmap"
    mount.mkdir()
    configmap_update(mount, {"live.yaml": weighted({"a": 1})}, stamp=0)
    path = mount if given == "folder" else mount / "live.yaml"
    log = tmp_path / "serve.log"  # outside the watched folder
    with backends() as started:
        urls = {name: b.url for name, b in started.items()}
        with serve(path, urls, "--throttle", str(THROTTLE), log_file=log) as (proc, port):
            assert served_by(port, 5) == {"a": 5}
            for stamp, target in enumerate(("b", "c"), start=1):
                configmap_update(mount, {"live.yaml": weighted({target: 1})}, stamp=stamp)
                until(  # the watcher's start included
                    lambda t=target: served_by(port, 1) == {t: 1},
                    f"{target} served",
                    timeout=CONVERGE + 10,
                )
                assert served_by(port, 10) == {target: 10}
            assert proc.poll() is None
    output = log.read_text()
    assert output.count("configuration reloaded (file change)") == 2, output
