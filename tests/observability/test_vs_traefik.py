"""The same YAML and requests through Traefik 3.7.15 (``--metrics.prometheus`` with
``addRoutersLabels``, JSON access log) and ``traefikservice-asgi serve --admin-port``: the same ``traefik_*``
series (names and label sets), the same counter values (durations excepted) and access
log lines with the same fields and values (times and durations excepted).

Label values that name a run's own things are normalised: Traefik's file provider says
``@file`` where the gateway (as Traefik's CRD provider) says ``@kubernetescrd``, and each
run has its own backends on their own ports. The readiness probes of both harnesses hit
the entry point before the script; the comparison is on what the script added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conformance.runner import (
    BackendSpec,
    Request,
    _recording_backends,
    _send_all,
    repeat,
    requires_traefik,
    wait_quiet,
)
from tests.conformance.translate import translate_all
from tests.support.gateway import serve_cli
from tests.support.traefik import TraefikProcess, free_port
from tests.support.wait import until

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenario.yaml")
BACKENDS: dict[str, Any] = {
    "default/app-primary:80": "primary",
    "default/app-canary:80": BackendSpec("canary", status=503),
    "default/app-v1:80": "v1",
    "default/app-v2:80": "v2",
    "default/app-v3:80": BackendSpec("v3", status=201),
}
SCRIPT: list[Request] = [
    *repeat(8, "canary.test"),
    *repeat(4, "mirror.test", "/m?x=1", method="POST", body=b"hello"),
    *repeat(2, "plain.test", method="PUT", body=b"0123456789"),
    Request.make("plain.test", method="PURGE"),  # llhttp refuses unknown verbs
    Request.make("plain.test", headers={"Accept": "text/event-stream"}),
    Request.make("nowhere.test"),
]

Sample = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str, renames: Mapping[str, str]) -> dict[Sample, float]:
    """``traefik_*`` samples by (name, sorted labels), label values normalised."""
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("traefik_"):
                continue
            labels = tuple(sorted((k, normalise(v, renames)) for k, v in sample.labels.items()))
            out[(sample.name, labels)] = sample.value
    return out


def normalise(value: str, renames: Mapping[str, str]) -> str:
    value = value.replace("@file", "@kubernetescrd")
    for url, name in renames.items():
        value = value.replace(url, name)
    return value


def scrape(url: str) -> str:
    return httpx.get(url, timeout=5).text


def delta(after: dict[Sample, float], before: dict[Sample, float]) -> dict[Sample, float]:
    """What the script added to each counter (durations left out: the ``_sum`` and the
    finite histogram buckets, which a slow moment of the machine moves across a bound;
    ``+Inf`` is the count; gauges as they are). The bucket series themselves are
    compared by :func:`test_same_traefik_series_names_and_label_sets`."""
    out = {}
    for key, value in after.items():
        name = key[0]
        if name.endswith("_sum") or name == "traefik_config_last_reload_success":
            continue
        if name.endswith("_bucket") and dict(key[1]).get("le") != "+Inf":
            continue
        if "_total" in name or name.endswith(("_bucket", "_count")):
            value -= before.get(key, 0.0)
        out[key] = value
    return out


def script_series(after: dict[Sample, float], before: dict[Sample, float]) -> set[Sample]:
    """The series set, less the entry point series only the readiness probes made (those
    whose ``requests_total`` the script left unchanged), in every entry point family."""
    total = "traefik_entrypoint_requests_total"
    probes_only = {
        labels
        for (name, labels), value in after.items()
        if name == total and before.get((name, labels)) == value
    }
    return {
        (name, labels)
        for name, labels in after
        if not (
            name.startswith("traefik_entrypoint")
            and tuple(kv for kv in labels if kv[0] != "le") in probes_only
        )
    }


ACCESS_VARYING = {
    "ClientAddr", "ClientPort", "Duration", "OriginDuration", "Overhead",
    "StartLocal", "StartUTC", "time", "RequestCount",
}  # fmt: skip


def access_lines(path: Path, renames: Mapping[str, str]) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("RequestHost") in ("oracle-ready.invalid", "readiness.invalid"):
            continue
        if record.get("RequestHost") == "127.0.0.1":  # a harness probe
            continue
        for key in ACCESS_VARYING:
            record.pop(key, None)
        for key in ("ServiceName", "ServiceURL", "ServiceAddr", "RouterName", "RequestAddr"):
            if key in record:
                record[key] = normalise(str(record[key]), renames)
        record.pop("RequestAddr", None)  # carries the proxy's own port where no Host
        lines.append(record)
    return lines


def run_traefik(tmp_path: Path) -> tuple[dict[Sample, float], set[Sample], list[dict[str, Any]]]:
    log = tmp_path / "traefik-access.json"
    with _recording_backends(BACKENDS) as (by_name, urls):
        renames = _renames(by_name)
        dynamic = translate_all([SCENARIO], urls).dynamic
        static = {
            "metrics": {"prometheus": {"addRoutersLabels": True}},
            "accessLog": {"format": "json", "filePath": str(log)},
        }
        with TraefikProcess(dynamic, tmp_path=tmp_path, extra_static=static) as traefik:
            before = parse(scrape(f"{traefik.api_url}/metrics"), renames)
            _send_all(traefik.url, SCRIPT)
            wait_quiet(list(by_name.values()), quiet=0.3, cap=5)
            after = parse(scrape(f"{traefik.api_url}/metrics"), renames)
        until(
            lambda: log.exists() and log.read_text().count("\n") >= len(SCRIPT),
            "every access log line",
        )
        return delta(after, before), script_series(after, before), access_lines(log, renames)


def run_gateway(tmp_path: Path) -> tuple[dict[Sample, float], set[Sample], list[dict[str, Any]]]:
    log = tmp_path / "gateway-access.json"
    admin = free_port()
    with _recording_backends(BACKENDS) as (by_name, urls):
        renames = _renames(by_name)
        flat = {k: v if isinstance(v, str) else v[0] for k, v in urls.items()}
        args = ("--admin-port", str(admin), "--metrics-routers", "--access-log")
        args += ("--access-log-format", "json")
        args += ("--access-log-file", str(log))
        with serve_cli([str(SCENARIO)], flat, *args) as base_url:
            metrics_url = f"http://127.0.0.1:{admin}/metrics"
            until(lambda: _answers(metrics_url), "the admin port")
            before = parse(scrape(metrics_url), renames)
            _send_all(base_url, SCRIPT)
            wait_quiet(list(by_name.values()), quiet=0.3, cap=5)
            after = parse(scrape(metrics_url), renames)
        until(
            lambda: log.exists() and log.read_text().count("\n") >= len(SCRIPT),
            "every access log line",
        )
        return delta(after, before), script_series(after, before), access_lines(log, renames)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _renames(by_name: Mapping[str, Any]) -> dict[str, str]:
    """Each backend's URL (and address) to its name, longest first."""
    out = {}
    for name, backend in by_name.items():
        out[f"http://127.0.0.1:{backend.port}"] = f"http://{name}"
        out[f"127.0.0.1:{backend.port}"] = name
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    traefik = run_traefik(tmp_path_factory.mktemp("traefik"))
    gateway = run_gateway(tmp_path_factory.mktemp("gateway"))
    return traefik, gateway


def test_same_traefik_series_names_and_label_sets(runs: tuple[Any, Any]) -> None:
    (_, traefik_series, _), (_, gateway_series, _) = runs
    assert sorted(gateway_series - traefik_series) == []
    assert sorted(traefik_series - gateway_series) == []


def test_same_counter_values_durations_excepted(runs: tuple[Any, Any]) -> None:
    (traefik, _, _), (gateway, _, _) = runs
    differing = {
        key: (traefik.get(key), gateway.get(key))
        for key in traefik.keys() | gateway.keys()
        if traefik.get(key) != gateway.get(key)
    }
    assert differing == {}


def test_router_series_are_compared_too(runs: tuple[Any, Any]) -> None:
    (traefik, _, _), _ = runs
    assert any(name == "traefik_router_requests_total" for name, _ in traefik)


def test_canary_counted_under_its_leaf_service_only(runs: tuple[Any, Any]) -> None:
    (_, _, _), (gateway, _, _) = runs
    services = {
        dict(labels)["service"]
        for name, labels in gateway
        if name == "traefik_service_requests_total"
    }
    assert "default-canary@kubernetescrd" not in services
    assert "default-app-canary-80@kubernetescrd" in services
    canary = [
        v
        for (name, labels), v in gateway.items()
        if name == "traefik_service_requests_total"
        and dict(labels)["service"] == "default-app-canary-80@kubernetescrd"
    ]
    assert sum(canary) == 2  # weights 3:1 over 8 requests


def test_same_json_access_log_fields_and_values(runs: tuple[Any, Any]) -> None:
    (_, _, traefik_log), (_, _, gateway_log) = runs
    assert len(traefik_log) == len(gateway_log) == len(SCRIPT)
    for index, (theirs, ours) in enumerate(zip(traefik_log, gateway_log, strict=True)):
        assert ours == theirs, f"request {index}: {SCRIPT[index].describe()}"


def test_sample_regex_is_what_flagger_matches() -> None:
    pattern = re.compile(r"default-app-canary-[0-9a-zA-Z-]+@kubernetescrd")
    assert pattern.fullmatch("default-app-canary-80@kubernetescrd")
