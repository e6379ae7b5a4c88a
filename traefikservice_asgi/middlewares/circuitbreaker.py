"""``circuitBreaker`` (Traefik's ``circuitbreaker`` on oxy v2.1.0's ``cbreaker``).

Three states, as oxy's:

- **standby**: every request goes on; its answer's status and latency are recorded in
  the rolling window (:mod:`._rtmetrics`), and after an answer, at most once per
  ``checkPeriod`` (the first answer always), the ``expression`` is evaluated on the
  window: true trips the breaker and empties the window.
- **tripped**, for ``fallbackDuration``: every request is answered ``responseCode``
  (503 by default) with Go's status text, none reaches the service.
- **recovering**, from the first request after that, for ``recoveryDuration``: a
  request goes on when letting it would keep the share let through below
  ``0.5 * elapsed / recoveryDuration`` (oxy's ``ratioController``: the first two are
  always refused, then more and more pass); answers are recorded and checked as in
  standby, so a condition still true trips it again. After ``recoveryDuration``, standby.

Times are the wall clock (``time.time_ns``) because oxy's one-second buckets are Unix
seconds. The status recorded is the one the next app sent (200 if it sent none); the
latency runs until the next app returned, the answer's body included, as Go's
``ServeHTTP`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config._predicate import (
    And,
    Compare,
    LatencyAtQuantileMS,
    NetworkErrorRatio,
    Or,
    Predicate,
    ResponseCodeRatio,
    parse_predicate,
)
from ..config.middlewares import CircuitBreaker as CircuitBreakerConfig
from ..responses import GO_STATUS_TEXT
from ._answer import send_text
from ._rtmetrics import SECOND, RTMetrics

__all__ = ["STANDBY", "TRIPPED", "RECOVERING", "CircuitBreaker", "RatioController"]

STANDBY, TRIPPED, RECOVERING = "standby", "tripped", "recovering"


class RatioController:
    """oxy's ``ratioController``: lets requests through on a linear ramp."""

    __slots__ = ("allowed", "denied", "duration", "start")

    def __init__(self, duration: int, now: int) -> None:
        self.duration = duration
        self.start = now
        self.allowed = 0
        self.denied = 0

    def allow_request(self, now: int) -> bool:
        target = 0.5 / float(self.duration) * float(now - self.start)
        if (self.allowed + 1) / (self.allowed + 1 + self.denied) < target:
            self.allowed += 1
            return True
        self.denied += 1
        return False


class CircuitBreaker:
    def __init__(
        self,
        app: ASGIApp,
        config: CircuitBreakerConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.app = app
        self.condition = parse_predicate(config.expression)
        self.check_period = round(config.check_period * SECOND)
        self.fallback_duration = round(config.fallback_duration * SECOND)
        self.recovery_duration = round(config.recovery_duration * SECOND)
        self.status = config.response_code
        self.body = GO_STATUS_TEXT.get(config.response_code, "").encode()
        self.clock = clock
        self.metrics = RTMetrics()
        self.state = STANDBY
        self.until = 0
        self.last_check: int | None = None
        self.ratio: RatioController | None = None

    def _value(self, compare: Compare, now: int) -> float:
        metric = compare.metric
        if isinstance(metric, NetworkErrorRatio):
            return self.metrics.network_error_ratio(now)
        if isinstance(metric, ResponseCodeRatio):
            a0, a1, b0, b1 = metric.start_a, metric.end_a, metric.start_b, metric.end_b
            return self.metrics.response_code_ratio(a0, a1, b0, b1, now)
        assert isinstance(metric, LatencyAtQuantileMS)
        return self.metrics.latency_at_quantile_ms(metric.quantile)

    def matches(self, predicate: Predicate, now: int) -> bool:
        """The expression on the window now (oxy's ``hpredicate``)."""
        if isinstance(predicate, And):
            return self.matches(predicate.left, now) and self.matches(predicate.right, now)
        if isinstance(predicate, Or):
            return self.matches(predicate.left, now) or self.matches(predicate.right, now)
        value, limit, op = self._value(predicate, now), predicate.value, predicate.op
        if op == ">":
            return value > limit
        if op == ">=":
            return value > limit or value == limit
        if op == "<":
            return value < limit
        if op == "<=":
            return value < limit or value == limit
        if op == "==":
            return value == limit
        return value != limit

    def activate_fallback(self) -> bool:
        """Whether this request gets the fallback answer (oxy's ``activateFallback``)."""
        if self.state == STANDBY:
            return False
        now = self.clock()
        if self.state == TRIPPED:
            if now < self.until:
                return True
            self.state, self.until = RECOVERING, now + self.recovery_duration
            self.ratio = RatioController(self.recovery_duration, now)
        if now > self.until:
            self.state, self.until = STANDBY, now
            return False
        assert self.ratio is not None
        return not self.ratio.allow_request(now)

    def record(self, status: int, latency: int) -> None:
        """An answer went through: into the window, then the periodic check."""
        now = self.clock()
        self.metrics.record(status, latency, now)
        if self.last_check is not None and now <= self.last_check:
            return
        self.last_check = now + self.check_period
        if self.state == TRIPPED or not self.matches(self.condition, now):
            return
        self.state, self.until = TRIPPED, now + self.fallback_duration
        self.metrics.reset(now)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.activate_fallback():
            await send_text(send, self.status, self.body)
            return
        status = 200

        async def recording_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            await send(message)

        start = self.clock()
        await self.app(scope, receive, recording_send)
        self.record(status, self.clock() - start)
