"""deploy/: the Kubernetes manifests and the image recipe."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fake_apiserver import FakeApiServer

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"


def _docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_manifests_pass_kubectl_client_dry_run() -> None:
    # kubectl's client dry run still asks the API for its discovery and the live
    # objects: the fake API server answers both.
    with FakeApiServer() as api:
        result = subprocess.run(
            [
                "kubectl",
                f"--server={api.url}",
                "--token=x",
                "apply",
                "--dry-run=client",
                "--validate=false",
                "-f",
                str(MANIFESTS),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    kinds = {line.split("/")[0] for line in result.stdout.splitlines()}
    assert kinds == {
        "namespace",
        "serviceaccount",
        "service",
        "deployment.apps",
        "clusterrole.rbac.authorization.k8s.io",
        "clusterrolebinding.rbac.authorization.k8s.io",
    }


def test_deployment_runs_two_non_root_replicas_of_serve_kubernetes_with_probes() -> None:
    (deployment,) = [d for d in _docs() if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "traefikservice-asgi"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"][:2] == ["serve", "--kubernetes"]
    assert "readinessProbe" in container and "livenessProbe" in container
    (service,) = [d for d in _docs() if d["kind"] == "Service"]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]


def test_deployment_probes_ping_on_the_admin_port_it_serves() -> None:
    (deployment,) = [d for d in _docs() if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    args = container["args"]
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    assert int(flags["--admin-port"]) == ports["admin"]
    assert int(flags["--port"]) == ports["web"]
    assert flags["--admin-host"] == "0.0.0.0"  # the kubelet probes the pod's address
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "admin"}


def test_dockerfile_is_slim_non_root_and_serves_kubernetes() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in text
    assert "USER 10001" in text
    assert '"serve", "--kubernetes"' in text
