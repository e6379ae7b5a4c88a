"""WebSocket requests through Traefik 3.7.15 and ``serve --admin-port``: the same
``traefik_*`` series and counter values (durations excepted) and the same JSON access
log lines (times and durations excepted).

Traefik counts a WebSocket at the entry point, router and leaf service with
``protocol="websocket"``; an accepted upgrade has ``code="0"`` and no bytes (Go's
reverse proxy hijacks the connection without writing a status), a refused one its
status and body bytes, an unreachable server ``502``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conformance.runner import requires_traefik
from tests.conformance.translate import translate_all
from tests.observability.test_vs_traefik import (
    Sample,
    _answers,
    access_lines,
    delta,
    parse,
    scrape,
    script_series,
)
from tests.proxy.test_websocket import WsBackend
from tests.support.gateway import serve_app, serve_cli
from tests.support.traefik import TraefikProcess, free_port
from tests.support.wait import until

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("websocket_scenario.yaml")
SESSIONS = 4  # on the 3:1 route: 3 to ws-a, 1 to ws-b whatever the tie order
Run = tuple[dict[Sample, float], set[Sample], list[dict[str, Any]]]


def converse(base_url: str, host: str, path: str = "/") -> str:
    """One WebSocket conversation (two echoes, then a close) or the refusal's status."""
    port = urlsplit(base_url).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with connect(
            f"ws://{host}{path}", sock=sock, open_timeout=10, close_timeout=10, compression=None
        ) as client:
            client.send("hello")
            assert client.recv(timeout=10) == "hello"
            client.send(b"x" * 1000)
            assert client.recv(timeout=10) == b"x" * 1000
        return "accepted"
    except InvalidStatus as refusal:
        return str(refusal.response.status_code)


def script(base_url: str) -> list[str]:
    outcomes = [converse(base_url, "ws.test") for _ in range(SESSIONS)]
    outcomes.append(converse(base_url, "refuse.test", "/refuse"))
    outcomes.append(converse(base_url, "down.test"))
    return outcomes


EXPECTED = ["accepted"] * SESSIONS + ["418", "502"]


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, str]]:
    a, b = WsBackend("ws-a"), WsBackend("ws-b")
    with serve_app(a) as url_a, serve_app(b) as url_b:
        yield {"ws-a": url_a, "ws-b": url_b, "ws-down": f"http://127.0.0.1:{free_port()}"}


def _urls(backends: Mapping[str, str]) -> dict[str, str]:
    return {f"default/{name}:80": url for name, url in backends.items()}


def _renames(backends: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, url in backends.items():
        out[url] = f"http://{name}"
        out[url.removeprefix("http://")] = name
    return out


def _run(backends: dict[str, str], tmp: Path, traefik: bool) -> tuple[Run, list[str]]:
    """The script through Traefik or the gateway: (counters added, series, access log
    lines) and each conversation's outcome."""
    log = tmp / "access.json"
    renames = _renames(backends)
    with contextlib.ExitStack() as stack:
        if traefik:
            static = {
                "metrics": {"prometheus": {"addRoutersLabels": True}},
                "accessLog": {"format": "json", "filePath": str(log)},
            }
            dynamic = translate_all([SCENARIO], _urls(backends)).dynamic
            oracle = stack.enter_context(TraefikProcess(dynamic, tmp_path=tmp, extra_static=static))
            base_url, metrics_url = oracle.url, f"{oracle.api_url}/metrics"
        else:
            admin = free_port()
            args = ("--admin-port", str(admin), "--metrics-routers", "--access-log")
            args += ("--access-log-format", "json", "--access-log-file", str(log))
            base_url = stack.enter_context(serve_cli([str(SCENARIO)], _urls(backends), *args))
            metrics_url = f"http://127.0.0.1:{admin}/metrics"
            until(lambda: _answers(metrics_url), "the admin port")
        before = parse(scrape(metrics_url), renames)
        outcomes = script(base_url)
        after = parse(scrape(metrics_url), renames)
    until(
        lambda: log.exists() and log.read_text().count("\n") >= len(EXPECTED),
        "every access log line",
    )
    return (
        delta(after, before),
        script_series(after, before),
        access_lines(log, renames),
    ), outcomes


@pytest.fixture(scope="module")
def traefik_run(
    backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, list[str]]:
    return _run(backends, tmp_path_factory.mktemp("ws-traefik"), traefik=True)


@pytest.fixture(scope="module")
def gateway_run(
    backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, list[str]]:
    return _run(backends, tmp_path_factory.mktemp("ws-gateway"), traefik=False)


def test_both_see_the_same_conversations(
    traefik_run: tuple[Run, list[str]], gateway_run: tuple[Run, list[str]]
) -> None:
    assert traefik_run[1] == gateway_run[1] == EXPECTED


def test_same_websocket_series_names_and_label_sets(
    traefik_run: tuple[Run, list[str]], gateway_run: tuple[Run, list[str]]
) -> None:
    (_, theirs, _), _ = traefik_run
    (_, ours, _), _ = gateway_run
    assert sorted(ours - theirs) == []
    assert sorted(theirs - ours) == []


def test_same_websocket_counter_values_durations_excepted(
    traefik_run: tuple[Run, list[str]], gateway_run: tuple[Run, list[str]]
) -> None:
    (their_values, their_series, _), _ = traefik_run
    (our_values, our_series, _), _ = gateway_run
    # The readiness probes' own series (delta 0) are left out, as in the series test.
    theirs = {key: v for key, v in their_values.items() if key in their_series}
    ours = {key: v for key, v in our_values.items() if key in our_series}
    assert any(dict(labels).get("protocol") == "websocket" for _, labels in theirs)
    differing = {
        key: (theirs.get(key), ours.get(key))
        for key in theirs.keys() | ours.keys()
        if theirs.get(key) != ours.get(key)
    }
    assert differing == {}


def test_an_accepted_websocket_is_code_0_with_no_bytes(
    gateway_run: tuple[Run, list[str]],
) -> None:
    (ours, _, _), _ = gateway_run
    accepted = {
        name: value
        for (name, labels), value in ours.items()
        if name.startswith("traefik_service_")
        and dict(labels).get("code") == "0"
        and dict(labels).get("protocol") == "websocket"
        and not name.endswith("_bucket")
    }
    by_service = {
        dict(labels)["service"]: value
        for (name, labels), value in ours.items()
        if name == "traefik_service_requests_total" and dict(labels).get("code") == "0"
    }
    assert by_service == {
        "default-ws-a-80@kubernetescrd": 3.0,
        "default-ws-b-80@kubernetescrd": 1.0,
    }
    assert accepted["traefik_service_responses_bytes_total"] == 0.0
    assert accepted["traefik_service_requests_bytes_total"] == 0.0


def test_same_websocket_access_log_lines(
    traefik_run: tuple[Run, list[str]], gateway_run: tuple[Run, list[str]]
) -> None:
    (_, _, theirs), _ = traefik_run
    (_, _, ours), _ = gateway_run
    assert len(theirs) == len(ours) == len(EXPECTED)
    for index, (their_line, our_line) in enumerate(zip(theirs, ours, strict=True)):
        assert our_line == their_line, f"conversation {index}: {EXPECTED[index]}"
