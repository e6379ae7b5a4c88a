"""circuitBreaker on a fake clock: checked once a checkPeriod, tripped into the fallback
answer, recovering on oxy's ramp, standby again; one window per instance."""

from __future__ import annotations

import asyncio
from typing import Any

from traefikservice_asgi.config.middlewares import CircuitBreaker as CircuitBreakerConfig
from traefikservice_asgi.middlewares._rtmetrics import SECOND
from traefikservice_asgi.middlewares.circuitbreaker import (
    RECOVERING,
    STANDBY,
    TRIPPED,
    CircuitBreaker,
    RatioController,
)

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


class Backend:
    def __init__(self, clock: Clock) -> None:
        self.status = 200
        self.latency = 0
        self.calls = 0
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        self.clock.now += self.latency
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})


def breaker(expression: str, **options: Any) -> tuple[CircuitBreaker, Backend, Clock]:
    clock = Clock()
    backend = Backend(clock)
    config = CircuitBreakerConfig(expression, **options)
    return CircuitBreaker(backend, config, clock=clock), backend, clock


def status_of(cb: CircuitBreaker) -> int:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    asyncio.run(cb({"type": "http", "headers": []}, receive, send))
    return int(sent[0]["status"])


HALF = "ResponseCodeRatio(500, 600, 0, 600) >= 0.5"


def test_the_first_answer_is_checked_then_once_a_check_period() -> None:
    cb, backend, clock = breaker(HALF, check_period=1.0)
    assert status_of(cb) == 200  # checked: 0 %
    backend.status = 500
    assert [status_of(cb) for _ in range(3)] == [500] * 3  # 75 %, not checked yet
    assert cb.state == STANDBY
    clock.now += SECOND  # not after lastCheck yet: Go's After is strict
    status_of(cb)
    assert cb.state == STANDBY
    clock.now += 1
    status_of(cb)
    assert cb.state == TRIPPED


def test_a_tripped_breaker_answers_the_response_code_until_the_fallback_ends() -> None:
    cb, backend, clock = breaker("NetworkErrorRatio() > 0.5", fallback_duration=5.0)
    backend.status = 502
    assert status_of(cb) == 502  # checked, 100 %: tripped after this answer
    assert cb.state == TRIPPED and backend.calls == 1
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(cb({"type": "http"}, None, send))  # type: ignore[arg-type]
    assert sent == [
        {"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"19")]},
        {"type": "http.response.body", "body": b"Service Unavailable"},
    ]
    clock.now += 5 * SECOND - 1
    assert status_of(cb) == 503 and backend.calls == 1


def test_recovery_lets_requests_through_on_oxys_ramp_then_goes_back_to_standby() -> None:
    cb, backend, clock = breaker(
        "NetworkErrorRatio() > 0.5", fallback_duration=1.0, recovery_duration=10.0
    )
    backend.status = 502
    status_of(cb)
    backend.status = 200
    clock.now += SECOND
    # Recovering from the first request: the first two are refused whatever the time.
    assert [status_of(cb), status_of(cb)] == [503, 503]
    assert cb.state == RECOVERING
    clock.now += 6 * SECOND  # target 0.3: 1/3 of the requests may pass
    assert status_of(cb) == 503  # 1/3 is not below 0.3
    clock.now += 1 * SECOND  # target 0.35 > 1/4... the next one passes
    assert status_of(cb) == 200
    clock.now += 3 * SECOND + 1  # past recoveryDuration: standby
    assert status_of(cb) == 200 and cb.state == STANDBY


def test_the_ratio_controller_allows_below_half_the_elapsed_share() -> None:
    rc = RatioController(10 * SECOND, 0)
    decisions = [rc.allow_request(t * SECOND) for t in (0, 1, 7, 7, 8, 9, 9, 9, 10)]
    # Target 0.05 * t; a request passes when (allowed + 1) / (allowed + 1 + denied) is
    # below it: 1/1, 1/2 no; 1/3 < .35; 2/4 no; 2/5 < .40 no; 2/6, 3/7 < .45; 4/8 no;
    # 4/9 < .5.
    assert decisions == [False, False, True, False, False, True, True, False, True]


def test_a_condition_still_true_while_recovering_trips_it_again() -> None:
    cb, backend, clock = breaker(
        "NetworkErrorRatio() > 0.5", fallback_duration=1.0, recovery_duration=2.0
    )
    backend.status = 502
    status_of(cb)
    clock.now += SECOND
    status_of(cb), status_of(cb)
    clock.now += 1900 * MS  # target 0.475 > 1/3: passes, still failing, checked
    assert status_of(cb) == 502
    assert cb.state == TRIPPED


def test_latency_at_quantile_reads_the_time_until_the_answer_is_done() -> None:
    cb, backend, _ = breaker("LatencyAtQuantileMS(50.0) > 100", check_period=60.0)
    backend.latency = 100 * MS
    status_of(cb)  # 100 ms: not above 100
    assert cb.state == STANDBY
    cb, backend, _ = breaker("LatencyAtQuantileMS(50.0) > 100")
    backend.latency = 102_400 * 1000  # 102.4 ms: HDR bucket [102400, 102912): 102 ms
    status_of(cb)
    assert cb.state == TRIPPED


def test_and_or_combine_the_metrics() -> None:
    cb, backend, _ = breaker("NetworkErrorRatio() > 0.5 && LatencyAtQuantileMS(50.0) > 10")
    backend.status = 504
    status_of(cb)
    assert cb.state == STANDBY  # fast: the && is false
    cb, backend, _ = breaker("NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 10")
    backend.status = 504
    status_of(cb)
    assert cb.state == TRIPPED


def test_response_code_sets_the_fallback_status_and_its_text() -> None:
    cb, backend, _ = breaker("NetworkErrorRatio() > 0.5", response_code=429)
    backend.status = 502
    status_of(cb)
    assert cb.status == 429 and cb.body == b"Too Many Requests"
    assert status_of(cb) == 429
