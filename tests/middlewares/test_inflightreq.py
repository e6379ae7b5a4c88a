"""inFlightReq: requests of one source counted while they are served, one more refused
with oxy's 429; the count released when the answer is done, per source."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from tests.support.asgi import scope as http_scope
from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app
from traefikservice_asgi import create_app, load_config_text
from traefikservice_asgi.config.middlewares import InFlightReq as InFlightReqConfig
from traefikservice_asgi.config.middlewares import SourceCriterion
from traefikservice_asgi.entrypoint.context import set_forward
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.middlewares.inflightreq import InFlightReq


class Gate:
    """The next app: each request waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.arrived = asyncio.Condition()

    async def wait_entered(self, n: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: self.entered >= n)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with self.arrived:
            self.entered += 1
            self.arrived.notify_all()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope_for(host: bytes) -> Any:
    scope = http_scope(headers=[(b"host", host)])
    set_forward(scope, prepare(scope))
    return scope


async def call(app: Any, host: bytes = b"a.test") -> list[Any]:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope_for(host), receive, send)
    return sent


def test_one_more_than_amount_in_flight_is_refused_and_a_finished_one_frees_its_place() -> None:
    async def scenario() -> None:
        gate = Gate()
        app = InFlightReq(gate, InFlightReqConfig(2))  # default source: the host
        first = [asyncio.create_task(call(app)) for _ in range(2)]
        await asyncio.wait_for(gate.wait_entered(2), 5)
        refused = await call(app)
        assert refused == [
            {"type": "http.response.start", "status": 429,
             "headers": [(b"content-length", b"26")]},
            {"type": "http.response.body", "body": b"max connections reached: 2"},
        ]  # fmt: skip
        other_host = asyncio.create_task(call(app, b"b.test"))  # another source
        await asyncio.wait_for(gate.wait_entered(3), 5)
        gate.release.set()
        answers = await asyncio.gather(*first, other_host)
        assert [a[0]["status"] for a in answers] == [200, 200, 200]
        assert app.connections == {}  # every count released, no source kept
        assert (await call(app))[0]["status"] == 200

    asyncio.run(scenario())


def test_a_failing_request_releases_its_place() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        app = InFlightReq(failing, InFlightReqConfig(1))
        for _ in range(2):
            with contextlib.suppress(RuntimeError):
                await call(app)
        assert app.connections == {}

    asyncio.run(scenario())


def test_amount_zero_refuses_everything_as_oxy_does() -> None:
    app = InFlightReq(Gate(), InFlightReqConfig(0, SourceCriterion(request_header_name="X")))
    sent = asyncio.run(call(app))
    assert sent[1]["body"] == b"max connections reached: 0"


ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: one, namespace: default}
spec:
  inFlightReq: {amount: 1}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop, namespace: default}
spec:
  routes:
    - match: Host(`a.test`) || Host(`b.test`)
      middlewares: [{name: one}]
      services: [{name: app, port: 80}]
"""


def test_through_the_gateway_a_second_request_while_one_is_served_gets_429() -> None:
    with RecordingBackend("app", delay=1.0) as backend:
        config = load_config_text(ROUTE, backends={"default/app:80": backend.url})
        with serve_app(create_app(config)) as url, httpx.Client(timeout=10) as client:

            async def scenario() -> None:
                async with httpx.AsyncClient(timeout=10) as aclient:
                    slow = asyncio.create_task(aclient.get(url, headers={"Host": "a.test"}))
                    # The first one is being served (bounded wait, raises on timeout).
                    await asyncio.to_thread(backend.wait_for_requests, 1)
                    refused = await asyncio.to_thread(client.get, url, headers={"Host": "a.test"})
                    assert (refused.status_code, refused.text) == (
                        429,
                        "max connections reached: 1",
                    )
                    other = await asyncio.to_thread(client.get, url, headers={"Host": "b.test"})
                    assert other.status_code == 200  # another host, another source
                    assert (await slow).status_code == 200

            asyncio.run(scenario())
            assert client.get(url, headers={"Host": "a.test"}).status_code == 200
