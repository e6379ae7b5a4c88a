"""What happens to a client request before routing, side by side with Traefik 3.7.15 over
raw sockets (scenarios/request-edges.yaml): hostile ``Host`` headers, unsafe path bytes,
absolute-form targets and ``OPTIONS *``. Each request is sent byte for byte to both; the
answers and what each backend received are compared."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.runner import _recording_backends, requires_traefik
from tests.conformance.translate import translate_all
from tests.support.backends import RecordedRequest, RecordingBackend
from tests.support.gateway import serve_app
from tests.support.traefik import TraefikProcess
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.server import EntryPointProtocol

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "request-edges.yaml"
BACKENDS = {f"default/{name}:80": name for name in ("edge-admin", "edge-direct", "edge-any")}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercased names, last value wins
    body: bytes
    reached: list[tuple[str, RecordedRequest]]  # (backend, request) for each backend hit


@dataclass(frozen=True)
class Targets:
    backends: dict[str, RecordingBackend]
    # "traefik", "gateway" (uvicorn's default parser), "gateway-h11", and "serve" (the
    # entry point's protocol that `serve` runs: httptools with Go's server behaviours)
    ports: dict[str, int]

    def send(self, target: str, request: bytes) -> Answer:
        for backend in self.backends.values():
            backend.clear()
        with socket.create_connection(("127.0.0.1", self.ports[target]), timeout=5) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        reached = [(name, r) for name, b in self.backends.items() for r in b.requests]
        return Answer(int(status_line.split()[1]), headers, body, reached)

    def both(self, request: bytes, gateway: str = "gateway") -> tuple[Answer, Answer]:
        return self.send("traefik", request), self.send(gateway, request)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    paths = [str(SCENARIO)]
    with _recording_backends(BACKENDS) as (by_name, urls):
        dynamic = translate_all(paths, urls, strict=True).dynamic
        tmp_path = tmp_path_factory.mktemp("request-edges")
        with (
            TraefikProcess(dynamic, tmp_path=tmp_path) as traefik,
            serve_app(create_app(paths, backends=urls)) as gateway,
            serve_app(create_app(paths, backends=urls), http="h11") as gateway_h11,
            serve_app(create_app(paths, backends=urls), http=EntryPointProtocol) as entry,
        ):
            ports = {
                name: int(url.rsplit(":", 1)[1])
                for name, url in (
                    ("traefik", traefik.url),
                    ("gateway", gateway),
                    ("gateway-h11", gateway_h11),
                    ("serve", entry),
                )
            }
            yield Targets(by_name, ports)


def request(target: str, *headers: str, method: str = "GET", body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("utf-8") + body


def assert_refused_alike(theirs: Answer, ours: Answer, body: bytes) -> None:
    assert (theirs.status, theirs.body, theirs.reached) == (400, body, [])  # the oracle
    assert (ours.status, ours.body, ours.reached) == (400, body, [])
    for name in ("content-type", "connection"):
        assert ours.headers[name] == theirs.headers[name]


# -- Host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("adm\u0130n.example", id="dotted-capital-I"),
        pytest.param("admin.example\u00a0", id="trailing-nbsp"),
        pytest.param("admin.example\u0085", id="trailing-nel"),
        pytest.param("admin.example\u2003", id="trailing-em-space"),
        pytest.param("\u3000admin.example", id="leading-ideographic-space"),
        pytest.param("admin.example/x", id="slash"),
    ],
)
@pytest.mark.parametrize("gateway", ["gateway", "gateway-h11"])
def test_a_host_header_outside_go_s_valid_bytes_is_refused_as_traefik_refuses_it(
    targets: Targets, host: str, gateway: str
) -> None:
    theirs, ours = targets.both(request("/x", f"Host: {host}"), gateway)
    assert_refused_alike(theirs, ours, b"400 Bad Request: malformed Host header")


def test_two_host_headers_are_refused_as_traefik_refuses_them(targets: Targets) -> None:
    theirs, ours = targets.both(request("/x", "Host: admin.example", "Host: direct.example"))
    assert_refused_alike(theirs, ours, b"400 Bad Request")


def test_an_http_1_1_request_without_host_is_refused_as_traefik_refuses_it(
    targets: Targets,
) -> None:
    theirs, ours = targets.both(request("/x"))
    assert_refused_alike(theirs, ours, b"400 Bad Request: missing required Host header")


def test_an_http_1_0_request_without_host_and_an_empty_host_are_routed_as_by_traefik(
    targets: Targets,
) -> None:
    for raw in (b"GET /x HTTP/1.0\r\n\r\n", request("/x", "Host: ")):
        theirs, ours = targets.both(raw)
        assert [name for name, _ in theirs.reached] == ["edge-any"]  # the oracle
        assert [name for name, _ in ours.reached] == ["edge-any"]
        assert ours.reached[0][1].target == theirs.reached[0][1].target == "/x"


# -- path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "sent"),
    [
        pytest.param("/a\\..\\admin", "/a%5C..%5Cadmin", id="backslashes"),
        pytest.param('/x"<>{}|^`', "/x%22%3C%3E%7B%7D%7C%5E%60", id="unsafe-bytes"),
        pytest.param(
            "/x\"[]!*()'", "/x%22%5B%5D%21%2A%28%29%27", id="unsafe-byte-escapes-sub-delims"
        ),
        pytest.param("/x[]!*()'", "/x[]!*()'", id="sub-delims-alone-kept"),
    ],
)
def test_unsafe_path_bytes_are_escaped_as_traefik_sends_them(
    targets: Targets, target: str, sent: str
) -> None:
    theirs, ours = targets.both(request(target, "Host: admin.example"))
    assert [(name, r.target) for name, r in theirs.reached] == [("edge-admin", sent)]
    assert [(name, r.target) for name, r in ours.reached] == [("edge-admin", sent)]


# -- absolute form ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "sent"),
    [
        pytest.param("http://admin.example/x?q=1", "/x?q=1", id="path-and-query"),
        pytest.param("http://admin.example/a\\b", "/a%5Cb", id="unsafe-byte"),
    ],
)
@pytest.mark.parametrize("gateway", ["gateway-h11", "serve"])
def test_an_absolute_form_target_is_routed_and_sent_by_its_authority_as_by_traefik(
    targets: Targets, target: str, sent: str, gateway: str
) -> None:
    theirs, ours = targets.both(request(target, "Host: direct.example"), gateway)
    for answer in (theirs, ours):
        [(name, received)] = answer.reached
        assert (name, received.target, received.header("Host")) == (
            "edge-admin",
            sent,
            "admin.example",
        )
        assert received.header("X-Forwarded-Host") == "admin.example"


def test_an_absolute_form_target_still_needs_a_host_header_as_in_go(targets: Targets) -> None:
    theirs, ours = targets.both(request("http://admin.example/x"), "gateway-h11")
    assert (theirs.status, theirs.body) == (400, b"400 Bad Request: missing required Host header")
    assert (ours.status, ours.reached) == (400, [])  # h11 refuses it itself, in its words


def test_an_absolute_form_target_under_httptools_is_routed_by_the_host_header(
    targets: Targets,
) -> None:
    """A difference (docs/differences.md) of the middleware under plain uvicorn:
    httptools drops the authority from the scope, so the Host header is all there is to
    route by (`serve`'s own protocol keeps it: the test above)."""
    ours = targets.send("gateway", request("http://admin.example/x", "Host: direct.example"))
    assert [(name, r.target) for name, r in ours.reached] == [("edge-direct", "/x")]


# -- OPTIONS * ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"abc"], ids=["no-body", "with-body"])
def test_options_star_is_answered_by_the_server_and_routes_nothing(
    targets: Targets, body: bytes
) -> None:
    headers = ["Host: direct.example"] + ([f"Content-Length: {len(body)}"] if body else [])
    raw = request("*", *headers, method="OPTIONS", body=body)
    theirs, ours = targets.both(raw)
    for answer in (theirs, ours):
        assert (answer.status, answer.body, answer.reached) == (200, b"", [])
        assert answer.headers["content-length"] == "0"
        assert "set-cookie" not in answer.headers and "content-type" not in answer.headers


def test_options_star_with_a_query_is_refused_as_by_traefik(targets: Targets) -> None:
    theirs, ours = targets.both(request("*?a=1", "Host: direct.example", method="OPTIONS"))
    assert_refused_alike(theirs, ours, b"400 Bad Request")


def test_another_method_with_a_star_target_is_routed_as_by_traefik(targets: Targets) -> None:
    theirs, ours = targets.both(request("*", "Host: direct.example"))
    assert [(name, r.target) for name, r in theirs.reached] == [("edge-direct", "*")]
    assert [(name, r.target) for name, r in ours.reached] == [("edge-direct", "*")]
