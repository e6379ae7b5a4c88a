"""Requests and answers go through exactly as through Traefik 3.7.15
(scenarios/forwarding.yaml): targets, bodies and forwarded headers as the backends saw
them, statuses, bodies and ``Set-Cookie`` as the client saw them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.runner import (
    BackendSpec,
    BothRuns,
    Request,
    TargetRun,
    assert_same_headers,
    assert_same_received,
    assert_same_response_headers,
    assert_same_responses,
    requires_traefik,
    run_both,
)
from tests.support.backends import RecordedRequest

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "forwarding.yaml"
BIG = bytes(range(256)) * 4096  # 1 MiB
UPLOAD = b"0123456789abcdef" * 131072  # 2 MiB
BACKENDS: dict[str, str | BackendSpec] = {
    "default/fw-app:80": "fw-app",
    "default/fw-204:80": BackendSpec("fw-204", status=204),
    "default/fw-304:80": BackendSpec("fw-304", status=304, headers=(("ETag", '"v1"'),)),
    "default/fw-big:80": BackendSpec("fw-big", body=BIG),
    "default/fw-cookie:80": BackendSpec(
        "fw-cookie", headers=(("Set-Cookie", "session=abc; Path=/; HttpOnly"),)
    ),
    "default/fw-close:80": BackendSpec("fw-close", headers=(("Connection", "close"),)),
}
SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Host": "evil.test",
    "X-Forwarded-Port": "9999",
    "X-Forwarded-Proto": "https",
    "X-Real-Ip": "203.0.113.7",
    "Forwarded": "for=203.0.113.7;proto=https",
    "Keep-Alive": "timeout=5",
    "Proxy-Connection": "keep-alive",
    "Te": "trailers",
}

R = Request.make
SCRIPT = [
    R("no-host.test", "/who"),  # 0
    R("fw.test", "/q?a=1;b=2&c=3"),  # 1
    R("fw.test", "/a%20b"),  # 2
    R("fw.test", "/a%2Fb"),  # 3
    R("fw.test", "/head", method="HEAD"),  # 4
    R("empty.test", "/", method="DELETE"),  # 5
    R("not-modified.test", headers={"If-None-Match": '"v1"'}),  # 6
    R("big.test", "/download"),  # 7
    R("fw.test", "/upload", method="PUT", body=UPLOAD),  # 8
    R("cookies.test"),  # 9
    R("cookies.test", cookies={"lb": "default-fw-cookie-80"}),  # 10: legacy value, rewritten
    R("close.test", "/1"),  # 11
    R("close.test", "/2"),  # 12
    R("close.test", "/3", method="POST", body=b"after close"),  # 13
    R("fw.test:8080", "/spoofed", headers=SPOOFED),  # 14
    R("fw.test", "/chunked", method="POST", body=b"streamed body", chunked=True),  # 15
    R("fw.test", "/%7Euser/%41"),  # 16
    R("fw.test", "/a%2fb/%e2%82%ac"),  # 17
    R("fw.test", "/a//b"),  # 18
    R("fw.test", "/%2e%2e/x"),  # 19
]
# Requests 16-19: Traefik forwards the entry point's normalized (unreserved %XX decoded,
# %xx upper-cased) and sanitized (//, dot segments) path; so do we.


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("forwarding"))


def received(runs: BothRuns, backend: str, index: int) -> tuple[RecordedRequest, RecordedRequest]:
    """What ``backend`` received for request ``index``: through Traefik, through us."""
    return runs.traefik.by_index(backend)[index], runs.gateway.by_index(backend)[index]


def test_pass_host_header_false_sends_the_servers_host(runs: BothRuns) -> None:
    theirs, ours = received(runs, "fw-app", 0)
    assert theirs.header("Host") == f"127.0.0.1:{port_of(runs.traefik, 'fw-app')}"
    assert ours.header("Host") == f"127.0.0.1:{port_of(runs.gateway, 'fw-app')}"
    assert theirs.header("X-Forwarded-Host") == ours.header("X-Forwarded-Host") == "no-host.test"


def port_of(run: TargetRun, backend: str) -> int:
    return next(port for port, name in run.ports.items() if name == f"<backend:{backend}>")


@pytest.mark.parametrize(
    ("index", "target"),
    [
        pytest.param(1, "/q?a=1&b=2&c=3", id="semicolon-query"),
        pytest.param(2, "/a%20b", id="encoded-space"),
        pytest.param(3, "/a%2Fb", id="encoded-slash"),
        pytest.param(16, "/~user/A", id="unreserved-decoded"),
        pytest.param(17, "/a%2Fb/%E2%82%AC", id="percent-upper-cased"),
        pytest.param(18, "/a/b", id="double-slash-merged"),
        pytest.param(19, "/x", id="encoded-dot-segments-removed"),
    ],
)
def test_request_targets_reach_the_backend_as_traefik_sends_them(
    runs: BothRuns, index: int, target: str
) -> None:
    theirs, ours = received(runs, "fw-app", index)
    assert theirs.target == target  # the oracle
    assert ours.target == theirs.target


@pytest.mark.parametrize("index", [4, 5, 6], ids=["head", "204-no-content", "304-not-modified"])
def test_bodyless_answers_are_relayed_without_a_body(runs: BothRuns, index: int) -> None:
    assert runs.traefik.observations[index].body == b""
    assert_same_responses(runs.traefik, runs.gateway, [index])


def test_large_bodies_go_through_whole_both_ways(runs: BothRuns) -> None:
    assert runs.traefik.observations[7].body == BIG
    assert_same_responses(runs.traefik, runs.gateway, [7, 8])
    theirs, ours = received(runs, "fw-app", 8)
    assert theirs.body == ours.body == UPLOAD


def test_backend_set_cookie_comes_after_the_sticky_cookie(runs: BothRuns) -> None:
    first = runs.traefik.observations[9].set_cookies
    assert first[1:] == ("session=abc; Path=/; HttpOnly",)
    assert first[0].startswith("lb=") and first[0].endswith("; Path=/; HttpOnly")
    assert_same_responses(runs.traefik, runs.gateway, [9, 10])


def test_a_backend_answering_connection_close_is_reconnected(runs: BothRuns) -> None:
    assert [o.status for o in runs.traefik.observations[11:14]] == [200, 200, 200]
    assert_same_responses(runs.traefik, runs.gateway, [11, 12, 13])


def test_spoofed_forwarding_headers_are_replaced_and_hop_by_hop_ones_dropped(
    runs: BothRuns,
) -> None:
    theirs, _ = received(runs, "fw-app", 14)
    assert theirs.header("X-Forwarded-Port") == "8080"
    assert theirs.header("Keep-Alive") is None
    assert_same_headers(runs.traefik, runs.gateway)


def test_every_backend_receives_the_same_requests(runs: BothRuns) -> None:
    assert_same_received(runs.traefik, runs.gateway)
    assert_same_responses(runs.traefik, runs.gateway)


def test_clients_get_the_same_response_headers(runs: BothRuns) -> None:
    assert_same_response_headers(runs.traefik, runs.gateway, list(range(len(SCRIPT))))


def test_a_304_answer_carries_no_content_type_as_in_go(runs: BothRuns) -> None:
    assert "content-type" not in dict(runs.traefik.observations[6].headers)  # the oracle
    assert_same_response_headers(runs.traefik, runs.gateway, [6])
