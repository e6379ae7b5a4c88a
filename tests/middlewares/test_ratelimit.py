"""rateLimit: Go's token bucket with a fake clock, Traefik's delay budget and 429."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from traefikservice_asgi.config.middlewares import (
    IPStrategy,
    SourceCriterion,
)
from traefikservice_asgi.config.middlewares import (
    RateLimit as RateLimitConfig,
)
from traefikservice_asgi.entrypoint.context import set_forward
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.middlewares.ratelimit import (
    SECOND,
    RateLimit,
    go_duration,
    max_delay_ns,
)

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 10 * SECOND

    def __call__(self) -> int:
        return self.now


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def limiter(clock: Clock, **options: Any) -> RateLimit:
    return RateLimit(ok_app, RateLimitConfig(**options), clock=clock)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (999_983_000, "999.983ms"),
        (SECOND, "1s"),
        (1_500_000_000, "1.5s"),
        (59 * SECOND + 998_765_432, "59.998765432s"),
        (3600 * SECOND, "1h0m0s"),
        (61 * SECOND + 250 * MS, "1m1.25s"),
    ],
)
def test_go_duration_strings(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_max_delay_is_half_a_token_and_500ms_below_one_a_second() -> None:
    assert max_delay_ns(1.0) == 500 * MS
    assert max_delay_ns(4.0) == 125 * MS
    assert max_delay_ns(4.9) == 125 * MS  # Go: time.Duration(rate) truncates
    assert max_delay_ns(0.01) == 500 * MS
    assert max_delay_ns(math.inf) == 0


def test_burst_then_a_token_per_interval_and_a_refused_wait_gives_its_token_back() -> None:
    clock = Clock()
    rl = limiter(clock, average=2, burst=2)  # 2 a second: a token every 500 ms
    assert [rl.allow("a"), rl.allow("a")] == [0, 0]
    assert rl.allow("a") == 500 * MS  # > 250 ms budget: refused, token given back
    clock.now += 300 * MS
    assert rl.allow("a") == 200 * MS  # within the budget: delayed
    assert rl.allow("a") == 700 * MS  # refused
    clock.now += 700 * MS
    assert rl.allow("a") == 0


def test_average_zero_means_no_limit() -> None:
    rl = limiter(Clock(), average=0)
    assert all(rl.allow("a") == 0 for _ in range(1000))


def test_a_bucket_unused_for_its_ttl_starts_full_again() -> None:
    clock = Clock()
    rl = limiter(clock, average=1, period=1.0, burst=100)  # ttl 2 s
    for _ in range(100):
        rl.allow("a")
    clock.now += 2 * SECOND  # two tokens back, but the bucket is still kept
    assert [rl.allow("a") for _ in range(2)] == [0, 0]
    assert rl.allow("a") > 0
    clock.now += 2 * SECOND + 1  # expired: a new, full bucket
    assert all(rl.allow("a") == 0 for _ in range(100))


def scope_for(client: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"a.test"), *(headers or [])],
        "client": (client, 40000),
        "http_version": "1.1",
    }
    set_forward(scope, prepare(scope, trusted=lambda ip: ip == "10.0.0.1"))
    return scope


async def answer(rl: RateLimit, scope: Any) -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    await rl(scope, receive, send)
    return sent


def test_refusal_is_traefiks_429_with_retry_headers() -> None:
    clock = Clock()
    rl = limiter(clock, average=1, period=60.0)
    asyncio.run(answer(rl, scope_for("127.0.0.1")))
    clock.now += 250 * MS
    start, body = asyncio.run(answer(rl, scope_for("127.0.0.1")))
    assert start["status"] == 429
    assert dict(start["headers"]) == {
        b"retry-after": b"60",
        b"x-retry-in": b"59.75s",
        b"content-length": b"17",
    }
    assert body["body"] == b"Too Many Requests"
    other = asyncio.run(answer(rl, scope_for("127.0.0.2")))
    assert other[0]["status"] == 200


def test_depth_reads_trusted_forwarded_for_and_untrusted_is_one_empty_source() -> None:
    clock = Clock()
    criterion = SourceCriterion(ip_strategy=IPStrategy(depth=2))
    rl = limiter(clock, average=1, period=60.0, source_criterion=criterion)
    xff = [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2")]
    assert rl.source(scope_for("10.0.0.1", xff)) == "1.1.1.1"
    assert rl.source(scope_for("10.0.0.2", xff)) == ""  # dropped at the entry point
    pool = limiter(
        clock,
        source_criterion=SourceCriterion(ip_strategy=IPStrategy(excluded_ips=("2.2.2.0/24",))),
    )
    assert pool.source(scope_for("10.0.0.1", xff)) == "1.1.1.1"
    host = limiter(clock, source_criterion=SourceCriterion(request_host=True))
    assert host.source(scope_for("10.0.0.1")) == "a.test"
    v6 = limiter(clock, source_criterion=SourceCriterion(ip_strategy=IPStrategy(ipv6_subnet=64)))
    assert v6.source(scope_for("2001:db8::1")) == "2001:db8::"
    assert v6.source(scope_for("127.0.0.1")) == "127.0.0.1"


def load(tmp_path: Any, spec: str) -> Any:
    from traefikservice_asgi.config import load_config

    (tmp_path / "r.yaml").write_text(
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: rl}\n"
        f"spec: {{rateLimit: {spec}}}\n---\n"
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r}\n"
        "spec: {routes: [{match: Host(`a.test`), middlewares: [{name: rl}],"
        " services: [{name: app, port: 80}]}]}\n"
    )
    return load_config(tmp_path, backends={"default/app:80": "http://127.0.0.1:9"})


def test_reader_defaults_period_one_second_and_burst_at_least_one(tmp_path: Any) -> None:
    (route,) = load(tmp_path, "{average: 5, burst: 0, period: 0}").routes
    assert route.middlewares[0].spec == RateLimitConfig(average=5, period=1.0, burst=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "{sourceCriterion: {ipStrategy: {}, requestHost: true}}",
            "spec.rateLimit.sourceCriterion: ipStrategy and requestHost are mutually",
        ),
        (
            "{redis: {endpoints: [a]}}",
            'spec.rateLimit.redis.endpoints[0]: must be host:port, got "a"',
        ),
        ("{redis: {poolSize: -1}}", "spec.rateLimit.redis.poolSize: must be an integer >= 0"),
        ("{redis: {readTimeout: -1s}}", "spec.rateLimit.redis.readTimeout: must be a duration"),
        (
            "{redis: {tls: {caOptional: true}}}",
            "spec.rateLimit.redis.tls.caOptional: unknown field",
        ),
        ("{period: -1}", "spec.rateLimit.period: must not be negative"),
        (
            "{sourceCriterion: {ipStrategy: {excludedIPs: [nope]}}}",
            'excludedIPs[0]: not an IP or a CIDR, got "nope"',
        ),
    ],
)
def test_reader_refuses_what_traefik_refuses(tmp_path: Any, spec: str, message: str) -> None:
    from traefikservice_asgi import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, spec)
