"""``scheme: h2c`` servers behave as in Traefik 3.7.15 (scenarios/h2c.yaml).

Every backend speaks HTTP/2 with prior knowledge and HTTP/1.1 on one port (Go's server
with ``SetUnencryptedHTTP2``), and records the HTTP version and the header block it got,
pseudo-headers included, so both proxies are compared on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conformance.runner import (
    BackendSpec,
    BothRuns,
    Request,
    TargetRun,
    assert_same,
    assert_same_responses,
    repeat,
    requires_traefik,
    run_both,
)
from tests.support.backends import RecordedRequest, RecordingBackend
from tests.support.h2c_backend import H2CRecordingBackend, Reply

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "h2c.yaml"
CANCEL = 0x8  # RST_STREAM error code

BACKENDS: dict[str, str | BackendSpec] = {
    "default/grpc-app:80": BackendSpec("grpc-app", h2c=True),
    "default/grpc-wrr:80": BackendSpec("grpc-wrr", h2c=True),
    "default/app-v1:80": "app-v1",
    "default/grpc-down:80": BackendSpec("grpc-down", status=503, body=b"down\n", h2c=True),
    "default/grpc-fallback:80": BackendSpec("grpc-fallback", h2c=True),
    "default/grpc-main:80": BackendSpec("grpc-main", h2c=True),
    "default/grpc-mirror:80": BackendSpec("grpc-mirror", h2c=True),
    "default/grpc-slow:80": BackendSpec("grpc-slow", delay=1.5, h2c=True),
    "default/grpc-refused:80": BackendSpec("grpc-refused", refuse=True),
}

SCRIPT = [
    Request.make(  # 0: cookies split per pair, TE: trailers kept, Connection-named dropped
        "h2c.test",
        "/a%20b?x=1;y=2",
        headers={"Cookie": "a=1; b=2", "TE": "trailers", "Connection": "X-Drop", "X-Drop": "1"},
    ),
    Request.make("h2c.test", "/form", method="POST", body=b"x" * 100),  # 1
    Request.make("h2c.test", "/chunked", method="POST", body=b"y" * 70_000, chunked=True),  # 2
    Request.make("h2c.test", "/empty", method="POST", body=b""),  # 3
    Request.make("h2c.test", "/head", method="HEAD"),  # 4
    Request.make("nohost.test"),  # 5
    *repeat(6, "mixed.test"),  # 6..11
    Request.make("failover.test", "/retry", method="POST", body=b"replayed body"),  # 12
    Request.make("mirror.test", "/copy", method="POST", body=b"mirrored body"),  # 13
    Request.make("slow.test"),  # 14
    Request.make("refused.test"),  # 15
    Request.make("h2c.test", "/up", headers={"Connection": "Upgrade", "Upgrade": "foo"}),  # 16
]
SLOW, REFUSED, UPGRADE = 14, 15, 16


# The RST_STREAM frames each target's grpc-slow received, Traefik's run first.
RESETS: list[list[tuple[int, int]]] = []


def _keep_resets(backends: Mapping[str, RecordingBackend]) -> None:
    slow = backends["grpc-slow"]
    assert isinstance(slow, H2CRecordingBackend)
    RESETS.append(slow.resets)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    RESETS.clear()
    return run_both(
        [SCENARIO],
        SCRIPT,
        BACKENDS,
        tmp_path=tmp_path_factory.mktemp("h2c"),
        settle_cap=6.0,
        actions={len(SCRIPT): [_keep_resets]},
    )


def test_h2c_servers_get_http2_with_prior_knowledge_from_both(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        for name in ("grpc-app", "grpc-wrr", "grpc-fallback", "grpc-main", "grpc-mirror"):
            versions = {r.http_version for r in run.received[name] if r.target != "/up"}
            assert versions == {"HTTP/2.0"}, (run.target, name)
        assert {r.http_version for r in run.received["app-v1"]} == {"HTTP/1.1"}, run.target


def test_responses_and_forwarded_requests_are_the_same_headers_included(runs: BothRuns) -> None:
    assert_same(runs.traefik, runs.gateway)
    # Traefik forwards Connection: Upgrade and Upgrade to an HTTP/1.1 server; we drop them
    # as hop-by-hop for every server (a known difference, not h2c's).
    assert_same(runs.traefik.without([UPGRADE]), runs.gateway.without([UPGRADE]), headers=True)


def test_the_http2_header_block_starts_with_gos_pseudo_headers(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        first = run.by_index("grpc-app")[0]
        pseudo = [(k, v) for k, v in first.headers if k.startswith(":")]
        assert [k for k, _ in first.headers[:4]] == [":authority", ":method", ":path", ":scheme"]
        assert pseudo[0] == (":authority", "h2c.test"), run.target
        assert pseudo[2:] == [(":path", "/a%20b?x=1&y=2"), (":scheme", "http")], run.target
        assert first.header_values("cookie") == ["a=1", "b=2"], run.target
        assert first.header("te") == "trailers", run.target
        assert first.header("x-drop") is None, run.target
        nohost = run.by_index("grpc-app")[5]
        assert nohost.header(":authority") == f"127.0.0.1:{_port(run, 'grpc-app')}", run.target


def test_bodies_reach_h2c_servers_with_go_framing(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        received = run.by_index("grpc-app")
        assert (received[1].body, received[1].header("content-length")) == (b"x" * 100, "100")
        chunked = received[2]  # no length known: DATA frames to END_STREAM, no header
        assert (len(chunked.body), chunked.header("content-length")) == (70_000, None)
        assert received[3].header("content-length") == "0", run.target
        assert received[4].header("content-length") is None, run.target


def test_failover_and_mirroring_replay_the_body_to_h2c_servers(runs: BothRuns) -> None:
    assert_same_responses(runs.traefik, runs.gateway, [12, 13])
    for run in (runs.traefik, runs.gateway):
        assert run.observations[12].backend == "grpc-fallback", run.target
        down, fallback = run.by_index("grpc-down")[12], run.by_index("grpc-fallback")[12]
        assert down.body == fallback.body == b"replayed body", run.target
        main, mirror = run.by_index("grpc-main")[13], run.by_index("grpc-mirror")[13]
        assert main.body == mirror.body == b"mirrored body", run.target
        assert mirror.http_version == "HTTP/2.0", run.target


def test_timeouts_and_refusals_give_traefiks_504_and_502(runs: BothRuns) -> None:
    theirs = runs.traefik.observations
    assert (theirs[SLOW].status, theirs[SLOW].body) == (504, b"Gateway Timeout")  # the oracle
    assert (theirs[REFUSED].status, theirs[REFUSED].body) == (502, b"Bad Gateway")
    assert_same_responses(runs.traefik, runs.gateway, [SLOW, REFUSED])


def test_a_stream_given_up_on_is_reset_with_cancel_by_both(runs: BothRuns) -> None:
    assert len(RESETS) == 2
    for target, resets in zip(("traefik", "gateway"), RESETS, strict=True):
        assert [code for _, code in resets] == [CANCEL], target


def test_an_upgrade_request_goes_over_http11_in_both(runs: BothRuns) -> None:
    for run in (runs.traefik, runs.gateway):
        upgrade = run.by_index("grpc-app")[UPGRADE]
        assert upgrade.http_version == "HTTP/1.1", run.target
        assert upgrade.header("host") == "h2c.test", run.target
    assert_same_responses(runs.traefik, runs.gateway, [UPGRADE])


def _port(run: TargetRun, name: str) -> int:
    ports = {placeholder: port for port, placeholder in run.ports.items()}
    return ports[f"<backend:{name}>"]


# -- malformed response header blocks (issue "Hostile backends and clients", item 16) -----

# Each kind: the header block grpc-app answers /<kind> with, then the body "body of <kind>".
# Traefik 3.7.15 answers 500 to what Go's HTTP/2 client refuses (a stream error) and
# relays the rest, connection-specific headers dropped as hop-by-hop.
MALFORMED: dict[str, list[tuple[bytes, bytes]]] = {
    "well-formed": [(b":status", b"200"), (b"content-type", b"text/plain")],
    "pseudo-after-regular": [(b"content-type", b"text/plain"), (b":status", b"200")],
    "upper-case-name": [(b":status", b"200"), (b"X-Upper", b"1")],
    "space-in-name": [(b":status", b"200"), (b"x bad", b"1")],
    "empty-name": [(b":status", b"200"), (b"", b"1")],
    "non-ascii-name": [(b":status", b"200"), (b"x\xc3\xa9", b"1")],
    "ctl-in-value": [(b":status", b"200"), (b"x-bad", b"a\x01b")],
    "del-in-value": [(b":status", b"200"), (b"x-bad", b"a\x7fb")],
    "tab-and-utf8-in-value": [(b":status", b"200"), (b"x-ok", b"a\tcaf\xc3\xa9")],
    "connection": [(b":status", b"200"), (b"connection", b"close")],
    "keep-alive": [(b":status", b"200"), (b"keep-alive", b"timeout=5")],
    "transfer-encoding": [(b":status", b"200"), (b"transfer-encoding", b"chunked")],
    "upgrade": [(b":status", b"200"), (b"upgrade", b"h2c")],
    "te-gzip": [(b":status", b"200"), (b"te", b"gzip")],
    "missing-status": [(b"content-type", b"text/plain")],
    "duplicate-status": [(b":status", b"200"), (b":status", b"200")],
    "non-numeric-status": [(b":status", b"2oo")],
    "signed-status": [(b":status", b"+200")],
    "request-pseudo": [(b":status", b"200"), (b":path", b"/")],
    "only-request-pseudo": [(b":path", b"/")],
    "unknown-pseudo": [(b":status", b"200"), (b":foo", b"bar")],
}
MALFORMED_SCRIPT = [Request.make("h2c.test", f"/{kind}") for kind in MALFORMED]


async def _answer_malformed(request: RecordedRequest, reply: Reply) -> None:
    kind = request.path.strip("/")
    await reply.start_raw(MALFORMED[kind])
    await reply.send(f"body of {kind}".encode(), end=True)


def _install_malformed(backends: Mapping[str, RecordingBackend]) -> None:
    app = backends["grpc-app"]
    assert isinstance(app, H2CRecordingBackend)
    app.responder = _answer_malformed


@pytest.fixture(scope="module")
def malformed_runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both(
        [SCENARIO],
        MALFORMED_SCRIPT,
        BACKENDS,
        tmp_path=tmp_path_factory.mktemp("h2c-malformed"),
        actions={0: [_install_malformed]},
    )


@pytest.mark.parametrize("index", range(len(MALFORMED)), ids=list(MALFORMED))
def test_a_malformed_response_header_block_gets_traefiks_answer(
    malformed_runs: BothRuns, index: int
) -> None:
    theirs = malformed_runs.traefik.observations[index]
    ours = malformed_runs.gateway.observations[index]
    assert (ours.status, ours.body) == (theirs.status, theirs.body)


def test_traefik_refuses_exactly_the_header_blocks_gos_http2_client_refuses(
    malformed_runs: BothRuns,
) -> None:
    refused = {
        kind
        for kind, seen in zip(MALFORMED, malformed_runs.traefik.observations, strict=True)
        if (seen.status, seen.body) == (500, b"Internal Server Error")
    }
    relayed = {"well-formed", "tab-and-utf8-in-value", "signed-status"}
    relayed |= {"connection", "keep-alive", "transfer-encoding", "upgrade", "te-gzip"}
    assert refused == set(MALFORMED) - relayed  # the oracle, as measured
