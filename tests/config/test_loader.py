"""Loading files and folders: every problem of every file reported together, in reading
order; warnings located as errors are and printed as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.manifests import CYCLE, WRR
from traefikservice_asgi import ConfigError, ConfigWarning, load_config, load_config_text
from traefikservice_asgi.cli import main

BLOG = Path(__file__).resolve().parents[2] / "examples" / "blog"


def test_blog_folder_loads_as_published_and_skips_deployments() -> None:
    config = load_config(BLOG)
    hosts = sorted(r.rule.text for r in config.routes)
    assert hosts == [
        "Host(`traefikservice-cokie.kubesre.lc`)",
        "Host(`traefikservice-copy.kubesre.lc`)",
        "Host(`traefikservice-wrr.kubesre.lc`)",
    ]


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file or folder"):
        load_config(tmp_path / "nope.yaml")


def test_every_error_of_every_file_is_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WRR)
    (tmp_path / "b.yaml").write_text(CYCLE)
    (tmp_path / "c.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = str(info.value)
    assert f"{tmp_path / 'a.yaml'}:14:" in text
    assert "reference cycle" in text
    assert f"{tmp_path / 'c.yaml'}:2: YAML syntax error" in text
    assert len(info.value.issues) == 3


SKIPPED_AND_IGNORED = """\
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: mw}
spec: {}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: shop}
spec:
  tls: {}
  routes:
    - match: Host(`shop.test`)
      services: [{name: web, port: 80}]
"""


def test_warnings_are_located_like_errors_and_print_as_before() -> None:
    config = load_config_text(
        SKIPPED_AND_IGNORED, filename="routes.yaml", backends={"shop/web:80": "http://127.0.0.1:9"}
    )
    assert all(isinstance(w, ConfigWarning) for w in config.warnings)
    skipped, tls = config.warnings
    assert (skipped.file, skipped.line, skipped.resource, skipped.path) == (
        "routes.yaml",
        1,
        "MiddlewareTCP",
        None,
    )
    assert (tls.line, tls.resource, tls.path) == (10, "IngressRoute shop/r", "spec.tls")
    assert [str(w) for w in config.warnings] == [
        "routes.yaml:1: MiddlewareTCP: skipped, not supported by traefikservice-asgi: "
        "TCP is not served",
        "routes.yaml:10: IngressRoute shop/r: spec.tls: ignored: TLS is terminated by the "
        "ASGI server (uvicorn --ssl-certfile), not by this package",
    ]


def test_check_prints_each_warning_on_stderr_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(SKIPPED_AND_IGNORED)
    result = CliRunner().invoke(
        main,
        ["check", str(tmp_path / "routes.yaml"), "--backend", "shop/web:80=http://127.0.0.1:9"],
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'routes.yaml'}:1: MiddlewareTCP: skipped, not supported by "
        "traefikservice-asgi: TCP is not served",
        f"warning: {tmp_path / 'routes.yaml'}:10: IngressRoute shop/r: spec.tls: ignored: "
        "TLS is terminated by the ASGI server (uvicorn --ssl-certfile), not by this package",
    ]
