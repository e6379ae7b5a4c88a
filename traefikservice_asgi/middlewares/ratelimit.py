"""``rateLimit`` (Traefik's ``pkg/middlewares/ratelimiter``, in-memory store): a token
bucket per source, Go's ``golang.org/x/time/rate`` written out by hand.

Each source (``sourceCriterion``, by default the peer's IP) has a bucket of ``burst``
tokens filled at ``average / period`` tokens a second (``average`` 0: no limit). A request
takes a token; when none is left it reserves the next one and would wait for it: if the
wait is at most the middleware's delay budget (``maxDelay``: half the time between two
tokens, ``1s / (2 * int(rate))`` for a rate of one a second or more, else 500 ms) it waits
and goes on, otherwise its reservation is cancelled (the token given back) and it is
answered ``429`` ``Too Many Requests`` with ``Retry-After`` (whole seconds, rounded up)
and ``X-Retry-In`` (Go's ``Duration.String()`` of the wait), and no ``Content-Type``
(Traefik writes the status before the text, so Go sniffs none). A bucket unused for its TTL
(2 s, or ``1 + int(1/rate)`` s below one request a second) is forgotten, so the source
starts again with a full bucket; at most 65536 buckets are kept (the one expiring first
is dropped), as Traefik's ``ttlmap``.

Written by hand because no Python limiter has Go's reservation semantics (a wait
reserved up front, cancelled and restored past the budget, float tokens, the TTL reset):
the answers, the waits and the headers are Traefik's to the nanosecond.

With ``redis`` the buckets are Traefik's Redis store instead (:mod:`._redis_store`),
keyed by the middleware's Traefik name (``default-limit@kubernetescrd``) and the source,
so gateways and Traefiks sharing a Redis share each budget. As in Traefik, a Redis that
fails answers ``500 Could not insert/update bucket`` (logged here at warning, once per
Redis every 10 s), and a limit of 0 (no ``average``) answers every request ``429 No
bursty traffic allowed``: Traefik's Redis limiter returns no delay for an unlimited rate,
which its middleware takes for a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import RateLimit as RateLimitConfig
from ..responses import send_go_error
from ._redis_store import RedisError, RedisStore
from ._source import peer_address, source_getter

__all__ = ["Limiter", "RateLimit", "go_duration", "max_delay_ns", "traefik_rate"]

SECOND = 1_000_000_000
MAX_SOURCES = 65536
TOO_MANY = b"Too Many Requests"
PROVIDER = "kubernetescrd"
STORE_FAILED_LOG_INTERVAL = 10.0
"""Seconds between two warnings about the same failing Redis."""

logger = logging.getLogger("traefikservice_asgi.ratelimit")
_store_failed_logged: dict[tuple[str, ...], float] = {}  # endpoints -> when


def traefik_rate(config: RateLimitConfig) -> float:
    """Tokens a second as Traefik computes them (``float64(average * Second) /
    float64(period)``, the period in ns); infinite without ``average``."""
    if config.average <= 0:
        return math.inf
    return float(config.average * SECOND) / float(round(config.period * SECOND))


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1.5s``, ``2m0.25s``, ``999.98ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < SECOND:
        unit, prec = ("ns", 0) if u < 1000 else ("µs", 3) if u < 1_000_000 else ("ms", 6)
        whole, frac = divmod(u, 10**prec)
        digits = f"{frac:0{prec}d}".rstrip("0") if prec else ""
        return f"{sign}{whole}{'.' + digits if digits else ''}{unit}"
    whole, frac = divmod(u, SECOND)
    digits = f"{frac:09d}".rstrip("0")
    text = f"{whole % 60}{'.' + digits if digits else ''}s"
    minutes = whole // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def max_delay_ns(rate: float) -> int:
    """Traefik's ``maxDelay``: the longest wait a request is delayed rather than refused."""
    if math.isinf(rate):
        return 0
    if rate < 1:
        return SECOND // 2
    return SECOND // (int(rate) * 2)


class Limiter:
    """One source's bucket: Go's ``rate.Limiter`` (``Reserve``, ``Cancel``), in ns, and
    when the middleware forgets it (``expiry``, kept by :class:`RateLimit`)."""

    __slots__ = ("burst", "expiry", "full", "last", "limit", "tokens")

    def __init__(self, limit: float, burst: int, now: int) -> None:
        self.limit = limit
        self.burst = burst
        self.full = float(burst)
        self.tokens = self.full  # a new limiter starts full
        self.last = now
        self.expiry = now

    def _advance(self, now: int) -> float:
        elapsed = now - min(self.last, now)
        tokens = self.tokens + (elapsed // SECOND + (elapsed % SECOND) / 1e9) * self.limit
        return min(tokens, self.full)

    def reserve(self, now: int) -> int:
        """Take a token; the wait until it is there (ns, 0: now)."""
        limit = self.limit
        if limit == math.inf:
            return 0
        # _advance, inline (this runs per request).
        last = self.last
        elapsed = now - last if now > last else 0
        tokens = self.tokens + (elapsed // SECOND + (elapsed % SECOND) / 1e9) * limit
        if self.full < tokens:
            tokens = self.full
        tokens -= 1
        wait = int(-tokens / limit * 1e9) if tokens < 0 else 0
        self.last = now
        self.tokens = tokens
        return wait

    def cancel(self, now: int) -> None:
        """Give back the token just reserved (``Reservation.CancelAt``)."""
        self.tokens = min(self._advance(now) + 1, self.full)
        self.last = now


class RateLimit:
    """In memory, a plain callable returning the next app's awaitable when the request
    goes on at once (no coroutine of its own); a coroutine when it waits or is refused,
    and with Redis."""

    def __init__(
        self,
        app: ASGIApp,
        config: RateLimitConfig,
        *,
        name: str = "",
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.app = app
        self.rate = traefik_rate(config)
        self.burst = config.burst
        self.max_delay = max_delay_ns(self.rate)
        if self.rate >= 1:
            self.ttl = 2 * SECOND
        else:
            self.ttl = (1 + int(1 / self.rate)) * SECOND
        self.source = source_getter(config.source_criterion)
        self.by_peer = self.source is peer_address  # read inline: the default criterion
        self.clock = clock
        self.buckets: dict[str, Limiter] = {}  # source -> bucket, least recently used first
        self.name = f"{name}@{PROVIDER}"
        """Traefik's name of the middleware, the start of its buckets' Redis keys."""
        self.store: RedisStore | None = None
        if config.redis is not None:
            self.store = RedisStore(
                config.redis,
                rate=self.rate,
                burst=self.burst,
                max_delay=self.max_delay,
                ttl=self.ttl // SECOND,
            )

    def _new_bucket(self, now: int) -> Limiter:
        buckets = self.buckets
        if len(buckets) >= MAX_SOURCES:
            expired = [key for key, bucket in buckets.items() if bucket.expiry < now]
            for key in expired or [min(buckets, key=lambda k: buckets[k].expiry)]:
                del buckets[key]
        return Limiter(self.rate, self.burst, now)

    def allow(self, source: str) -> int:
        """The wait of a request from ``source`` (ns); past ``max_delay``: refused."""
        now = self.clock()
        bucket = self.buckets.pop(source, None)
        if bucket is None or bucket.expiry < now:
            bucket = self._new_bucket(now)
        bucket.expiry = now + self.ttl
        self.buckets[source] = bucket
        delay = bucket.reserve(now)
        if delay > self.max_delay:
            bucket.cancel(now)
        return delay

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if self.store is not None or scope["type"] not in ("http", "websocket"):
            return self._general(scope, receive, send)
        if self.by_peer:
            client = scope.get("client")
            delay = self.allow(str(client[0]) if client else "")
        else:
            delay = self.allow(self.source(scope))
        if delay > 0:
            return self._limited(delay, scope, receive, send)
        return self.app(scope, receive, send)

    async def _general(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.store is None:
            delay: int | None = self.allow(self.source(scope))
        elif math.isinf(self.rate):
            delay = None  # Traefik's redisLimiter: no delay, taken for a refusal
        else:
            try:
                delay = await self.store.allow(f"{self.name}:{self.source(scope)}")
            except (RedisError, OSError) as exc:
                _log_store_failure(self.name, self.store.config.endpoints, exc)
                await send_go_error(send, 500, "Could not insert/update bucket")
                return
        if delay is None:
            await send_go_error(send, 429, "No bursty traffic allowed")
            return
        await self._limited(delay, scope, receive, send)

    async def _limited(self, delay: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Past the budget: ``429``; else wait ``delay`` (ns) and go on."""
        if delay > self.max_delay:
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"retry-after", b"%d" % math.ceil(delay / SECOND)),
                        (b"x-retry-in", go_duration(delay).encode()),
                        (b"content-length", b"%d" % len(TOO_MANY)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": TOO_MANY})
            return
        if delay > 0:
            await asyncio.sleep(delay / SECOND)
        await self.app(scope, receive, send)

    async def aclose(self) -> None:
        """Close the Redis store's connections of the running loop (none in memory)."""
        if self.store is not None:
            await self.store.aclose()


def _log_store_failure(name: str, endpoints: tuple[str, ...], exc: BaseException) -> None:
    """Traefik logs every failure at error; here a warning naming the Redis and the cause,
    at most once per Redis every :data:`STORE_FAILED_LOG_INTERVAL` seconds."""
    now = time.monotonic()
    last = _store_failed_logged.get(endpoints)
    if last is not None and now - last < STORE_FAILED_LOG_INTERVAL:
        return
    _store_failed_logged[endpoints] = now
    logger.warning(
        "rateLimit %s: Redis %s failed, answering 500 Could not insert/update bucket: "
        "%s: %s (logged once per Redis every %.0f s)",
        name,
        ", ".join(endpoints),
        type(exc).__name__,
        str(exc) or "no detail",
        STORE_FAILED_LOG_INTERVAL,
    )
