"""rateLimit's Redis store against a real ``redis-server``: Traefik's script and keys,
bursts, the average over a period, sources, one budget shared by two limiters, and what a
Redis that is down (or comes back) does to requests."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from tests.middlewares.test_ratelimit import Clock, ok_app, scope_for
from tests.middlewares.test_ratelimit import answer as sent_by
from tests.support.redis import REDIS_SERVER, RedisServer, redis_cluster
from tests.support.traefik import free_port
from traefikservice_asgi.config.middlewares import (
    ClientTLS,
    Redis,
    SourceCriterion,
)
from traefikservice_asgi.config.middlewares import (
    RateLimit as RateLimitConfig,
)
from traefikservice_asgi.middlewares import _redis_store
from traefikservice_asgi.middlewares._redis_store import TOKEN_BUCKET_SCRIPT, go_float
from traefikservice_asgi.middlewares.ratelimit import SECOND, RateLimit

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")

MS = 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def redis_server(server: RedisServer) -> RedisServer:
    server.client().flushall()
    return server


def wall_clock() -> Clock:
    """A clock at a Unix time in ns: the script fills a new key's bucket from the epoch
    (``last`` 0), so a real-looking time starts it full, as Go's ``time.Now()`` does."""
    clock = Clock()
    clock.now = 1_700_000_000 * SECOND
    return clock


def limiter(
    server: RedisServer, clock: Clock | None = None, *, name: str = "default-rl", **options: Any
) -> RateLimit:
    redis = Redis(endpoints=(server.endpoint,), **options.pop("redis", {}))
    rl = RateLimit(ok_app, RateLimitConfig(redis=redis, **options), name=name)
    if clock is not None and rl.store is not None:
        rl.store.clock = clock
    return rl


def request(headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return scope_for("127.0.0.1", headers)


async def answer(rl: RateLimit, scope: Any) -> tuple[int, dict[bytes, bytes], bytes]:
    start, body = await sent_by(rl, scope)
    return start["status"], dict(start["headers"]), body["body"]


async def statuses(rl: RateLimit, n: int, scope: Any = None) -> list[int]:
    return [(await answer(rl, scope or request()))[0] for _ in range(n)]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_script_is_traefiks_byte_for_byte() -> None:
    # The SHA1 of the EVALSHA Traefik 3.7.15 sends (seen with MONITOR; its script is
    # pkg/middlewares/ratelimiter/lua.go's AllowTokenBucketRaw): loaded by either side,
    # the other finds it (tests/middlewares/test_ratelimit_redis_vs_traefik.py).
    assert hashlib.sha1(TOKEN_BUCKET_SCRIPT.encode()).hexdigest() == (
        "7d2a5c0821964964e7f36858db0f3c4a49951c4d"
    )
    assert TOKEN_BUCKET_SCRIPT.startswith("\nlocal key = KEYS[1]\n")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1 / 1_000_000, "0.00000010000000000000001"), (2.0, "2"), (1e-06, "0.000001"), (0.5, "0.5")],
)
def test_float_arguments_are_written_as_go_redis_writes_them(value: float, text: str) -> None:
    assert go_float(value) == text


def test_burst_then_refused_with_the_wait_until_the_next_token(redis_server: RedisServer) -> None:
    clock = wall_clock()
    rl = limiter(redis_server, clock, average=6, period=60.0, burst=3)

    async def scenario() -> list[Any]:
        first = await statuses(rl, 3)
        refused = await answer(rl, request())
        clock.now += 2500 * MS
        still = await answer(rl, request())
        await rl.aclose()
        return [first, refused, still]

    first, refused, still = run(scenario())
    assert first == [200, 200, 200]
    status, headers, body = refused
    assert (status, body) == (429, b"Too Many Requests")
    assert headers[b"retry-after"] == b"10"
    assert headers[b"x-retry-in"] == b"10s"
    assert still[0] == 429
    assert still[1][b"x-retry-in"] == b"7.5s"  # the refused request gave its token back


def test_keys_and_their_ttl_are_traefiks(redis_server: RedisServer) -> None:
    clock = wall_clock()
    rl = limiter(redis_server, clock, name="shop-limit", average=6, period=60.0, burst=2)
    run(statuses(rl, 1))
    client = redis_server.client()
    key = b"rate:shop-limit@kubernetescrd:127.0.0.1"
    assert client.keys("*") == [key]
    assert client.hgetall(key) == {b"last": str(clock.now // 1000).encode(), b"tokens": b"1"}
    # Traefik's ttl: 1 + int(1/rate) seconds below one request a second (rate 0.1: 11 s).
    assert 10 <= client.ttl(key) <= 11


def test_a_short_wait_is_waited_and_a_long_one_refused(redis_server: RedisServer) -> None:
    clock = wall_clock()
    rl = limiter(redis_server, clock, average=1, burst=1)  # max delay 500 ms

    async def scenario() -> list[int]:
        out = [(await answer(rl, request()))[0]]
        clock.now += 600 * MS  # 0.6 token: the next one in 400 ms, within the budget
        loop = asyncio.get_running_loop()
        started = loop.time()
        out.append((await answer(rl, request()))[0])
        waited = loop.time() - started
        out.append(waited >= 0.35)
        status, headers, _ = await answer(rl, request())  # 1.4 s more: refused
        out += [status, headers[b"x-retry-in"] == b"1.4s"]
        await rl.aclose()
        return out

    assert run(scenario()) == [200, 200, True, 429, True]


def test_each_source_has_its_own_bucket(redis_server: RedisServer) -> None:
    criterion = SourceCriterion(request_header_name="X-User")
    rl = limiter(redis_server, average=1, period=60.0, source_criterion=criterion)

    async def scenario() -> list[int]:
        alice = request([(b"x-user", b"alice")])
        bob = request([(b"x-user", b"bob")])
        out = await statuses(rl, 2, alice) + await statuses(rl, 2, bob)
        await rl.aclose()
        return out

    assert run(scenario()) == [200, 429, 200, 429]
    keys = sorted(redis_server.client().keys("*"))
    assert keys == [b"rate:default-rl@kubernetescrd:alice", b"rate:default-rl@kubernetescrd:bob"]


def test_request_host_is_the_source(redis_server: RedisServer) -> None:
    criterion = SourceCriterion(request_host=True)
    rl = limiter(redis_server, average=1, period=60.0, source_criterion=criterion)
    run(statuses(rl, 1))
    assert redis_server.client().keys("*") == [b"rate:default-rl@kubernetescrd:a.test"]


def test_two_limiters_on_one_redis_share_one_budget(redis_server: RedisServer) -> None:
    # Two gateways (or a gateway and Traefik) with the same Middleware: one bucket.
    one = limiter(redis_server, average=1, period=60.0, burst=4)
    two = limiter(redis_server, average=1, period=60.0, burst=4)

    async def scenario() -> list[int]:
        out = await statuses(one, 2) + await statuses(two, 2)
        out += await statuses(one, 1) + await statuses(two, 1)
        await one.aclose()
        await two.aclose()
        return out

    assert run(scenario()) == [200, 200, 200, 200, 429, 429]


def test_another_middleware_name_is_another_budget(redis_server: RedisServer) -> None:
    one = limiter(redis_server, name="default-a", average=1, period=60.0)
    two = limiter(redis_server, name="default-b", average=1, period=60.0)
    assert run(statuses(one, 1)) + run(statuses(two, 1)) == [200, 200]


def test_without_average_every_request_is_refused_as_traefik_does(
    redis_server: RedisServer,
) -> None:
    # Traefik's redisLimiter returns no delay for an unlimited rate, and its middleware
    # answers a missing delay "No bursty traffic allowed" (observed on Traefik 3.7.15:
    # tests/middlewares/test_ratelimit_redis_vs_traefik.py). Redis is not asked.
    rl = limiter(redis_server, burst=5)
    status, headers, body = run(answer(rl, request()))
    assert (status, body) == (429, b"No bursty traffic allowed\n")
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert redis_server.client().keys("*") == []


def test_a_database_and_a_password(tmp_path: Any) -> None:
    acl = ("--user", "ann", "on", ">s3cret", "~*", "&*", "+@all", "--user", "default", "off")
    with RedisServer(*acl) as server:
        good = limiter(server, redis={"username": "ann", "password": "s3cret", "db": 3}, average=1)
        bad = limiter(server, redis={"username": "ann", "password": "wrong"}, average=1)
        assert run(statuses(good, 1)) == [200]
        assert run(statuses(bad, 1)) == [500]
        client = server.client(username="ann", password="s3cret", db=3)
        assert client.keys("*") == [b"rate:default-rl@kubernetescrd:127.0.0.1"]


def test_redis_down_is_traefiks_500_logged_once_and_recovers(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer().start()
    try:
        rl = limiter(server, average=100, burst=100)
        _redis_store_logged_reset()

        async def scenario() -> list[Any]:
            out: list[Any] = [await statuses(rl, 1)]  # a pooled connection, then Redis goes
            server.stop()
            out += [await answer(rl, request()), await answer(rl, request())]
            server.start()  # back on the same port: the stale connection is replaced
            out.append(await statuses(rl, 1))
            await rl.aclose()
            return out

        with caplog.at_level(logging.WARNING, "traefikservice_asgi.ratelimit"):
            before, down, again, after = run(scenario())
    finally:
        server.stop()
    assert before == [200]
    status, headers, body = down
    assert (status, body) == (500, b"Could not insert/update bucket\n")
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert again[0] == 500
    assert after == [200]
    warnings = [r for r in caplog.records if "Could not insert/update bucket" in r.getMessage()]
    assert len(warnings) == 1
    assert server.endpoint in warnings[0].getMessage()


def test_an_unreachable_redis_answers_500_at_once() -> None:
    # go-redis does not retry a refused connection: no backoff before the 500.
    with RedisServer() as server:
        port = server.port
    rl = limiter(RedisServer(port=port), average=1)

    async def scenario() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        status = (await answer(rl, request()))[0]
        return status, loop.time() - started

    status, took = run(scenario())
    assert status == 500
    assert took < 1.0


def _redis_store_logged_reset() -> None:
    from traefikservice_asgi.middlewares import ratelimit

    ratelimit._store_failed_logged.clear()
    assert _redis_store.KEY_PREFIX == "rate:"


def test_tls_with_the_ca_and_client_certificate_of_the_secrets(tmp_path: Any) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client.test")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server_cert.private_key_pem.write_to_path(str(files["key"]))
    tls_port = free_port()
    args = ["--tls-port", str(tls_port), "--tls-auth-clients", "yes"]
    args += ["--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"])]
    args += ["--tls-ca-cert-file", str(files["ca"])]
    pem = {
        "cert": client_cert.cert_chain_pems[0].bytes().decode(),
        "key": client_cert.private_key_pem.bytes().decode(),
    }
    with RedisServer(*args) as server:

        def status(**tls: Any) -> int:
            redis = Redis(endpoints=(f"127.0.0.1:{tls_port}",), tls=ClientTLS(**tls))
            rl = RateLimit(ok_app, RateLimitConfig(average=1, burst=9, redis=redis), name="t")
            return int(run(statuses(rl, 1))[0])

        assert status(ca=ca.cert_pem.bytes().decode(), **pem) == 200
        assert status(**pem) == 500  # the system's CAs do not know the server's
        assert status(insecure_skip_verify=True, **pem) == 200
        assert status(ca=ca.cert_pem.bytes().decode()) == 500  # no client certificate
        assert server.client().keys("*") == [b"rate:t@kubernetescrd:127.0.0.1"]


def test_several_endpoints_are_a_redis_cluster_sharing_one_budget(tmp_path: Any) -> None:
    # go-redis' UniversalClient: several endpoints are a cluster's seed list; each
    # source's key lives on the node of its slot, and every limiter finds it there.
    with redis_cluster(tmp_path) as nodes:
        endpoints = tuple(node.endpoint for node in nodes[:2])  # a seed list, not all
        criterion = SourceCriterion(request_header_name="X-User")

        def cluster_limiter() -> RateLimit:
            config = RateLimitConfig(
                average=1,
                period=60.0,
                burst=2,
                source_criterion=criterion,
                redis=Redis(endpoints=endpoints),
            )
            return RateLimit(ok_app, config, name="default-rl")

        one, two = cluster_limiter(), cluster_limiter()
        users = [f"user{i}" for i in range(6)]

        async def scenario() -> list[list[int]]:
            out = []
            for user in users:
                scope = request([(b"x-user", user.encode())])
                out.append(await statuses(one, 1, scope) + await statuses(two, 2, scope))
            await one.aclose()
            await two.aclose()
            return out

        assert run(scenario()) == [[200, 200, 429]] * len(users)
        keys = {key for node in nodes for key in node.client().keys("rate:*")}
        assert keys == {f"rate:default-rl@kubernetescrd:{user}".encode() for user in users}
        holding = [node for node in nodes if node.client().keys("rate:*")]
        assert len(holding) > 1  # spread over the slots of several nodes


def test_a_certificate_and_key_that_do_not_pair_answer_500(redis_server: RedisServer) -> None:
    ca = trustme.CA()
    one, other = ca.issue_cert("one.test"), ca.issue_cert("other.test")
    tls = ClientTLS(
        cert=one.cert_chain_pems[0].bytes().decode(), key=other.private_key_pem.bytes().decode()
    )
    rl = limiter(redis_server, redis={"tls": tls}, average=1)
    assert rl.store is not None
    assert rl.store.broken.startswith("creating TLS config:")
    assert run(statuses(rl, 1)) == [500]
