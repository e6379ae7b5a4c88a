"""The command line: check reports every error with its line; serve and demo run for real."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_cli
from tests.support.manifests import HALF_VALID, WEB_WITH_A_TERMINATING_ENDPOINT, one_route
from tests.support.wait import until
from traefikservice_asgi.cli import main

ROOT = Path(__file__).resolve().parents[1]

BROKEN = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: default}
spec:
  routes:
    - match: Host(`a.test`)
      services:
        - {name: wrr, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: wrr, namespace: default}
spec:
  weighted:
    services:
      - {name: app-v1, port: 80, weight: -2}
      - {name: ghost, kind: TraefikService}
      - {name: loop-a, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: loop-a, namespace: default}
spec:
  weighted:
    services:
      - {name: loop-b, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: loop-b, namespace: default}
spec:
  weighted:
    services:
      - {name: loop-a, kind: TraefikService}
"""


def test_check_reports_every_error_with_its_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(BROKEN)
    (tmp_path / "syntax.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    routes, syntax = tmp_path / "routes.yaml", tmp_path / "syntax.yaml"
    assert (
        f"error: {routes}:16: TraefikService default/wrr: spec.weighted.services[0].weight: "
        "must be an integer >= 0, got -2"
    ) in lines
    assert (
        f"error: {routes}:17: TraefikService default/wrr: spec.weighted.services[1].name: "
        "TraefikService default/ghost not found"
    ) in lines
    assert any(
        line.startswith(f"error: {routes}:34: TraefikService default/loop-b:")
        and "reference cycle: default/loop-a -> default/loop-b -> default/loop-a" in line
        for line in lines
    )
    assert any(line.startswith(f"error: {syntax}:5: YAML syntax error") for line in lines)
    assert lines[-1] == "4 error(s)"


def test_check_prints_routes_and_service_trees_for_a_valid_config() -> None:
    result = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "blog")])
    assert result.exit_code == 0, result.output
    assert "3 route(s), in matching order:" in result.output
    assert "└── weighted default-cokie, sticky cookie cookie" in result.output
    assert (
        "    └── mirror 10 %: servers default-app-v2-80: http://127.0.0.1:9002 (from endpoints)"
        in result.output
    )


def test_check_marks_the_fenced_servers_of_terminating_endpoints(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(WEB_WITH_A_TERMINATING_ENDPOINT + one_route("{name: web, port: 80}"))
    result = CliRunner().invoke(main, ["check", str(routes)])
    assert result.exit_code == 0, result.output
    assert ": http://10.0.0.1:8080, http://10.0.0.2:8080 (fenced) (from endpoints)" in result.output


def test_backend_option_must_name_a_service_and_a_url() -> None:
    result = CliRunner().invoke(
        main, ["check", str(ROOT / "examples" / "blog"), "--backend", "nonsense"]
    )
    assert result.exit_code == 2
    assert "expected NAMESPACE/NAME:PORT=URL" in result.output


def test_serve_runs_the_gateway_under_uvicorn() -> None:
    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        backends = {"default/app-v1:80": v1.url, "default/app-v2:80": v2.url}
        # check_exit: serve must exit 0 on SIGINT.
        with serve_cli([str(ROOT / "examples" / "blog")], backends, check_exit=True) as url:
            r = httpx.get(url, headers={"Host": "traefikservice-wrr.kubesre.lc"})
            assert r.text == "Hello app-v2\n"
            assert "server" not in r.headers  # no uvicorn Server header, like Traefik
            assert httpx.get(url, headers={"Host": "nope"}).status_code == 404


def test_serve_refuses_an_invalid_config_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(BROKEN)
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert "must be an integer >= 0, got -2" in result.stderr


def test_demo_replays_the_walkthrough_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "traefikservice_asgi", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "=> app-v1 3 times, app-v2 6 times" in out
    assert "=> app-v1 5 times out of 5" in out and "=> app-v2 5 times out of 5" in out
    assert (
        "=> clients got Hello app-v1 9 times out of 9; app-v2 received 1 mirrored copy, of requests: 1"
        in out
    )
    wrr = out.split("# 1.")[1].split("=>")[0].splitlines()[1:]
    assert wrr == ["Hello app-v2", "Hello app-v1", "Hello app-v2"] * 3


def test_serve_with_two_workers_shares_the_port_and_stops_cleanly() -> None:
    with RecordingBackend("app-v1") as v1, RecordingBackend("app-v2") as v2:
        backends = {"default/app-v1:80": v1.url, "default/app-v2:80": v2.url}
        with serve_cli(
            [str(ROOT / "examples" / "blog")], backends, "--workers", "2", check_exit=True
        ) as url:
            answers = []
            for _ in range(30):
                with httpx.Client() as client:  # a new connection each time: any worker
                    answers.append(
                        client.get(url, headers={"Host": "traefikservice-copy.kubesre.lc"}).text
                    )
    assert answers == ["Hello app-v1\n"] * 30


def test_gateway_options_survive_the_trip_to_a_worker() -> None:
    from traefikservice_asgi import MirrorLimits
    from traefikservice_asgi.options import GatewayOptions

    options = GatewayOptions(
        backends={"default/x:80": ["http://127.0.0.1:1"]},
        forwarded_trusted_ips=["10.0.0.0/8"],
        mirror_limits=MirrorLimits(timeout=2.5),
    )
    again = GatewayOptions.from_json(options.to_json())
    assert again == GatewayOptions(
        backends={"default/x:80": ["http://127.0.0.1:1"]},
        forwarded_trusted_ips=["10.0.0.0/8"],
        mirror_limits=MirrorLimits(timeout=2.5),
    )


# ---------------------------------------------------------------- a newcomer's first hour

ONE_ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: default}
spec:
  routes:
    - match: Host(`a.test`)
      services:
        - {name: %s, port: 80}
"""


def test_check_warns_about_a_backend_no_reference_uses() -> None:
    result = CliRunner().invoke(
        main,
        ["check", str(ROOT / "examples" / "blog"), "--backend", "default/app-v3:80=http://x:1"],
    )
    assert result.exit_code == 0
    assert (
        "warning: backends 'default/app-v3:80' matches no Service reference in the "
        "configuration and is ignored (references: default/app-v1:80, default/app-v2:80); "
        'did you mean "default/app-v2:80"?'
    ) in result.stderr.splitlines()


def test_check_no_cluster_dns_refuses_a_misspelt_service(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(ONE_ROUTE % "app-v3")
    relaxed = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert relaxed.exit_code == 0
    assert "default/app-v3:80 -> http://app-v3.default.svc:80" in relaxed.stderr
    strict = CliRunner().invoke(main, ["check", str(tmp_path), "--no-cluster-dns"])
    assert strict.exit_code == 1
    assert "the cluster DNS fallback (http://app-v3.default.svc:80) is off" in strict.stderr
    assert strict.stderr.splitlines()[-1] == "1 error(s)"


def test_check_of_a_config_without_routes_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "empty.yaml")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'empty.yaml'}: no YAML document in this file (empty, or only "
        "comments)",
        f"error: no IngressRoute with a route found in {tmp_path / 'empty.yaml'}: no request "
        "would be routed (a standalone gateway, like Traefik with no router, answers 404 page "
        "not found to every request); add an IngressRoute (apiVersion: traefik.io/v1alpha1), "
        "see examples/blog/",
        "1 error(s)",
    ]


def test_serve_of_a_config_without_routes_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = subprocess.run(  # a subprocess: a serve that starts would never return
        [sys.executable, "-m", "traefikservice_asgi", "serve", "--port", "0", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "error: no IngressRoute with a route found in" in result.stderr


def test_serve_prints_the_error_count_as_check_does(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(BROKEN)
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "3 error(s)"


def test_serve_refuses_a_port_out_of_range() -> None:
    result = subprocess.run(  # a subprocess: a serve that starts would never return
        [sys.executable, "-m", "traefikservice_asgi", "serve", "--port", "99999", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Invalid value for '--port': 99999 is not in the range 0<=x<=65535" in result.stderr


def test_dash_h_is_help() -> None:
    for args in (["-h"], ["check", "-h"], ["serve", "-h"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, args
        assert result.output.startswith("Usage:")


@contextlib.contextmanager
def _serve_logging(
    paths: list[str], *args: str, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``serve`` as a subprocess at the default log level, its output in ``log``."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "traefikservice_asgi",
                "serve",
                *paths,
                "--port",
                str(port),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for(log: Path, text: str) -> str:
    until(lambda: text in log.read_text(), f"{text!r} in the log")
    return log.read_text()


def test_serve_says_at_startup_which_references_use_cluster_dns_and_logs_the_502s(
    tmp_path: Path,
) -> None:
    (tmp_path / "routes.yaml").write_text(ONE_ROUTE % "app-v3")
    log = tmp_path / "serve.log"
    with _serve_logging([str(tmp_path / "routes.yaml")], log=log) as (_, url):
        startup = log.read_text()
        assert "WARNING: traefikservice_asgi.config: 1 Service reference(s)" in startup
        assert "default/app-v3:80 -> http://app-v3.default.svc:80" in startup
        for _ in range(3):
            r = httpx.get(url + "/x", headers={"Host": "a.test"}, timeout=30)
            assert r.status_code == 502
        text = _wait_for(log, "502 Bad Gateway: server")
    lines = [line for line in text.splitlines() if "502 Bad Gateway: server" in line]
    assert len(lines) == 1  # rate-limited: once per server every 10 s
    assert lines[0].startswith(
        "WARNING: traefikservice_asgi.proxy: 502 Bad Gateway: server "
        "http://app-v3.default.svc:80 failed for GET a.test/x: "
    )


def test_serve_without_paths_or_kubernetes_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "give YAML files or folders, or --kubernetes" in result.output


def test_serve_kubernetes_outside_a_cluster_says_how_to_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(main, ["serve", "--kubernetes"])
    assert result.exit_code == 2
    assert "pass --kubeconfig or --kubernetes-endpoint" in result.output


def test_serve_kubernetes_refuses_workers() -> None:
    result = CliRunner().invoke(
        main, ["serve", "--kubernetes", "--kubernetes-endpoint", "http://x", "--workers", "2"]
    )
    assert result.exit_code == 2
    assert "scale with replicas" in result.output


# ------------------------------------------------------------------------- --skip-invalid

SKIPPED = [
    ':4: Middleware default/bad: spec.stripPrefix.prefixs: unknown field "prefixs" (did '
    "you mean 'prefixes'?)",
    ":11: IngressRoute default/multi: spec.routes[0].services[0].weight: must be an integer "
    ">= 0, got -1",
    ":13: IngressRoute default/multi: spec.routes[2].middlewares[0].name: middleware "
    '"default-bad@kubernetescrd" does not exist',
]


def test_check_skip_invalid_warns_of_each_thing_left_out_then_prints_the_rest(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(HALF_VALID)
    backend = ["--backend", "default/app:80=http://127.0.0.1:9"]
    refused = CliRunner().invoke(main, ["check", str(routes), *backend])
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        *(f"error: {routes}{issue}" for issue in SKIPPED[:2]),
        "2 error(s)",
    ]
    result = CliRunner().invoke(main, ["check", str(routes), *backend, "--skip-invalid"])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        *(f"warning: skipped: {routes}{issue}" for issue in SKIPPED),
        "left out: 1 resource(s), 2 route(s), as Traefik would; loading the rest",
    ]
    assert result.stdout.startswith("2 route(s), in matching order:\n")
    assert "ok.test" in result.stdout and "other.test" in result.stdout
    assert "weight.test" not in result.stdout and "mw.test" not in result.stdout


def test_check_skip_invalid_that_leaves_out_every_route_is_an_error(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(HALF_VALID)  # no backend for app, and no cluster DNS: no route loads
    result = CliRunner().invoke(main, ["check", str(routes), "--skip-invalid", "--no-cluster-dns"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-3] == "left out: 1 resource(s), 4 route(s), as Traefik would; loading the rest"
    assert lines[-2].startswith("error: every route was left out (the warnings above say why)")


def test_serve_skip_invalid_serves_the_rest_and_logs_what_it_left_out(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(HALF_VALID)
    log = tmp_path / "serve.log"
    with (
        RecordingBackend("app") as app,
        _serve_logging(
            [str(tmp_path / "routes.yaml")],
            "--skip-invalid",
            "--backend",
            f"default/app:80={app.url}",
            log=log,
        ) as (_, url),
    ):
        assert httpx.get(url, headers={"Host": "ok.test"}).text == "Hello app\n"
        assert httpx.get(url, headers={"Host": "mw.test"}).status_code == 404
        text = log.read_text()
    for issue in SKIPPED:
        assert (
            f"ERROR: traefikservice_asgi.config: skipped: {tmp_path / 'routes.yaml'}{issue}\n"
            in text
        )
