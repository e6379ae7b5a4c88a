"""The command line: check reports every error with its line; serve and demo run for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_cli
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
        "=> clients got Hello app-v1 9 times out of 9; app-v2 received 1 mirrored copies, of requests: 1"
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
