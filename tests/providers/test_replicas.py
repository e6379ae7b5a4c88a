"""Two ``serve --kubernetes`` replicas on one fake API server, and changes under load.

Each replica keeps its own WRR state, so the aggregate split of N requests spread over
the replicas is within one cycle per replica of the weights; a sticky cookie is a hash
of the child's name, so a cookie one replica set is honoured by the other.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.kube import KubeGateway, route, service, slice_, weighted
from tests.support.traefik import free_port_on

HOST = "k.test"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeApiServer, int, list[KubeGateway]]]:
    shared = free_port_on("127.0.0.1", "127.0.0.2")
    with (
        RecordingBackend("app-v1") as v1,
        RecordingBackend("app-v2a", port=shared),
        RecordingBackend("app-v2b", host="127.0.0.2", port=shared),
        FakeApiServer(bookmark_interval=0.5) as api,
    ):
        api.put(
            service("app-v1"),
            slice_("app-v1", v1.port, "127.0.0.1"),
            service("app-v2"),
            slice_("app-v2", shared, "127.0.0.1", "127.0.0.2"),
            weighted(1, 3, sticky=True),
            route("canary", HOST, {"name": "canary", "kind": "TraefikService"}),
        )
        replicas: list[KubeGateway] = []
        try:
            for i in range(2):
                replicas.append(KubeGateway(api, tmp_path / f"replica-{i}.log", throttle="0.1s"))
            yield api, shared, replicas
        finally:
            for replica in replicas:
                replica.stop()


def test_two_replicas_split_within_one_cycle_each_and_share_sticky_cookies(
    cluster: tuple[FakeApiServer, int, list[KubeGateway]],
) -> None:
    _, _, replicas = cluster
    seen: Counter[str] = Counter()
    for i in range(40):  # no cookie kept: every request is a fresh pick
        answer = httpx.get(replicas[i % 2].url, headers={"Host": HOST})
        seen[answer.text.strip().removeprefix("Hello ").rstrip("ab")] += 1
    # 1:3 over 40 requests, 20 per replica (5 whole cycles each): exactly 10:30; the
    # bound for any N is one cycle (4 requests) per replica.
    assert abs(seen["app-v1"] - 10) <= 2 * 1 and seen["app-v1"] + seen["app-v2"] == 40
    first = httpx.get(replicas[0].url, headers={"Host": HOST})
    cookie = first.headers["set-cookie"].split(";", 1)[0]
    for _ in range(6):
        other = httpx.get(replicas[1].url, headers={"Host": HOST, "Cookie": cookie})
        assert other.text.rstrip("ab\n") == first.text.rstrip("ab\n")
        assert "set-cookie" not in other.headers  # the cookie is valid there too


def test_64_clients_see_no_failure_during_20_weight_and_20_endpoint_changes(
    cluster: tuple[FakeApiServer, int, list[KubeGateway]],
) -> None:
    api, shared, replicas = cluster
    url = replicas[0].url
    failures: list[str] = []
    done = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> int:
        count = 0
        while not done.is_set():
            try:
                answer = await http.get(url, headers={"Host": HOST})
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text!r}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            count += 1
        return count

    async def changes() -> None:
        for i in range(20):
            api.put(weighted(1 + i % 3, 3 - i % 3, sticky=True))
            await asyncio.sleep(0.12)
            addresses = ("127.0.0.1",) if i % 2 == 0 else ("127.0.0.1", "127.0.0.2")
            api.put(slice_("app-v2", shared, *addresses))
            await asyncio.sleep(0.12)
        await asyncio.sleep(0.5)
        done.set()

    async def main() -> int:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
            counts = await asyncio.gather(*(client(http) for _ in range(64)), changes())
        return sum(c for c in counts if c is not None)

    total = asyncio.run(main())
    assert failures == [], f"{len(failures)} failures of {total}: {failures[:5]}"
    assert total > 200
