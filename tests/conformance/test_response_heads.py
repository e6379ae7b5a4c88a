"""A backend's answer head reaches the client as Traefik 3.7.15 relays it.

Each answer is sent by a raw-socket backend to the real Traefik and to the gateway under
uvicorn; both clients' raw heads are read over a raw socket (httpx would trim the
values itself). Go's textproto trims a header value's leading and trailing spaces and
tabs; net/http writes its own reason phrase (``http.StatusText``, or ``status code N``
for a code it does not name), whatever the backend's was.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tests.conformance.runner import requires_traefik
from tests.support.gateway import serve_app
from tests.support.traefik import TraefikProcess
from tests.test_faults import gateway_for, raw_backend
from traefikservice_asgi.entrypoint.server import EntryPointProtocol
from traefikservice_asgi.responses import status_line

pytestmark = requires_traefik

STATUSES = [200, 208, 226, 299, 306, 413, 414, 416, 418, 420, 422, 425, 499, 509, 599]


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    target = head.split(b" ")[1]
    if target.startswith(b"/status/"):
        code = target.removeprefix(b"/status/")
        writer.write(b"HTTP/1.1 " + code + b" Backend Reason\r\nContent-Length: 2\r\n\r\nok")
    else:
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: x \r\nX-Tab:\tv \t \r\nX-Blank:   \r\n"
            b"X-Inner: a  b\r\nContent-Length: 2\r\n\r\nok"
        )
    await writer.drain()
    writer.close()


def _head(base: str, target: str) -> tuple[bytes, dict[bytes, bytes]]:
    """The raw status line and the raw header values (by lower-cased name)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: f.test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.partition(b"\r\n\r\n")[0].split(b"\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(b":")
        headers[name.lower()] = value.removeprefix(b" ")  # the one space Go writes
    return head[0] + b"\r\n", headers


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    tmp = tmp_path_factory.mktemp("heads")
    (tmp / "traefik").mkdir()
    (tmp / "gateway").mkdir()
    (tmp / "plain").mkdir()
    with raw_backend(_answer) as url:
        dynamic = {
            "http": {
                "routers": {"r": {"rule": "Host(`f.test`)", "service": "s"}},
                "services": {"s": {"loadBalancer": {"servers": [{"url": url}]}}},
            }
        }
        with (
            TraefikProcess(dynamic, tmp_path=tmp / "traefik") as traefik,
            serve_app(gateway_for(tmp / "gateway", url), http=EntryPointProtocol) as gateway,
            serve_app(gateway_for(tmp / "plain", url)) as plain,
        ):
            yield traefik.url, gateway, plain


def test_header_values_lose_their_surrounding_whitespace_as_in_traefik(
    both: tuple[str, str, str],
) -> None:
    traefik, gateway, _ = both
    _, expected = _head(traefik, "/")
    assert (expected[b"server"], expected[b"x-tab"], expected[b"x-blank"]) == (b"x", b"v", b"")
    assert expected[b"x-inner"] == b"a  b"
    _, got = _head(gateway, "/")
    for name in (b"server", b"x-tab", b"x-blank", b"x-inner"):
        assert got[name] == expected[name], name


@pytest.mark.parametrize("status", STATUSES)
def test_status_line_is_gos(both: tuple[str, str, str], status: int) -> None:
    # The table responses.status_line holds, checked against the oracle.
    traefik, _, _ = both
    assert _head(traefik, f"/status/{status}")[0] == status_line(status)


def test_serve_writes_traefiks_reason_phrases(both: tuple[str, str, str]) -> None:
    """`serve`'s entry point protocol writes Go's status line, whatever uvicorn's."""
    _, gateway, _ = both
    assert [_head(gateway, f"/status/{s}")[0] for s in STATUSES] == [
        status_line(s) for s in STATUSES
    ]


def test_under_plain_uvicorn_the_reason_phrase_is_pythons(both: tuple[str, str, str]) -> None:
    """The documented difference of the middleware inside another server: uvicorn's
    own phrases (none for 299), which `serve` replaces."""
    _, _, plain = both
    assert _head(plain, "/status/299")[0] == b"HTTP/1.1 299 \r\n"
    assert _head(plain, "/status/200")[0] == status_line(200)


def test_a_status_from_600_to_999_is_relayed_as_traefik_relays_it(
    both: tuple[str, str, str],
) -> None:
    """Go reads any three-digit status and its server writes up to 999 (``status code
    N``); `serve`'s entry point protocol writes the same line."""
    traefik, gateway, _ = both
    for status in (600, 777, 999):
        expected = f"HTTP/1.1 {status} status code {status}\r\n".encode()
        assert _head(traefik, f"/status/{status}")[0] == expected
        assert _head(gateway, f"/status/{status}")[0] == expected == status_line(status)


def test_under_plain_uvicorn_a_status_from_600_gets_no_answer(both: tuple[str, str, str]) -> None:
    """The documented difference of the middleware under uvicorn's httptools protocol:
    uvicorn's table of status lines stops at 599 (a KeyError inside uvicorn), so the
    connection is closed without an answer; `serve` and `uvicorn --http h11` relay it."""
    _, _, plain = both
    assert _head(plain, "/status/600") == (b"\r\n", {})  # nothing at all
