"""The image deploy/build-image.sh builds runs ``check`` and ``serve --kubernetes``.

Not in the default run (about a minute to build): ``python -m pytest -m image
tests/test_image.py`` as root with ``apt-get install -y buildah mmdebstrap``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.traefik import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "traefikservice-asgi:test"
ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        shutil.which("buildah") is None or shutil.which("mmdebstrap") is None or os.geteuid() != 0,
        reason="needs root, buildah and mmdebstrap",
    ),
]


def _stop_server_on(port: int) -> None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(port).encode() in argv and b"timeout" not in argv[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGINT)


def _buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, env=ENV, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    built = subprocess.run(
        [os.path.join(ROOT, "deploy", "build-image.sh"), IMAGE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**ENV, "PYTHON": sys.executable},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    ctr = _buildah("from", IMAGE).stdout.strip()
    try:
        assert (
            _buildah("copy", ctr, os.path.join(ROOT, "examples", "blog"), "/examples").returncode
            == 0
        )
        yield ctr
    finally:
        _buildah("rm", ctr)


def test_image_runs_check_as_a_non_root_user(container: str) -> None:
    result = _buildah("run", container, "--", "traefikservice-asgi", "check", "/examples")
    assert result.returncode == 0, result.stderr
    assert "traefikservice-wrr.kubesre.lc" in result.stdout
    assert _buildah("run", container, "--", "id", "-u").stdout.strip() == "10001"


def test_image_serves_from_the_kubernetes_api(container: str) -> None:
    port = free_port()
    with RecordingBackend("app-v1") as backend, FakeApiServer() as api:
        api.put(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "app", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "app-1",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "app"},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": backend.port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            },
            {
                "apiVersion": "traefik.io/v1alpha1",
                "kind": "IngressRoute",
                "metadata": {"name": "r", "namespace": "default"},
                "spec": {
                    "routes": [
                        {
                            "match": "Host(`img.test`)",
                            "kind": "Rule",
                            "services": [{"name": "app", "port": 80}],
                        }
                    ]
                },
            },
        )
        # The chroot shares the host's network: the fake API is on its loopback.
        proc = subprocess.Popen(
            [
                "buildah",
                "run",
                container,
                "--",
                "timeout",
                "-s",
                "INT",
                "40",
                "traefikservice-asgi",
                "serve",
                "--kubernetes",
                "--kubernetes-endpoint",
                api.url,
                "--port",
                str(port),
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "img.test"})
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, (
                        "serve did not start"
                    )
                    time.sleep(0.1)
            assert answer.status_code == 200
            assert answer.text == "Hello app-v1\n"
        finally:
            # buildah run does not pass SIGTERM on: stop the server it started (found
            # by its unique --port), then buildah exits with it.
            _stop_server_on(port)
            proc.terminate()
            try:
                proc.wait(50)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
