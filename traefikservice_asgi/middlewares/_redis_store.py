"""``rateLimit``'s Redis store (Traefik's ``pkg/middlewares/ratelimiter/redis_limiter.go``
and ``lua.go``): the buckets kept in Redis, so that every gateway, and every Traefik,
using one Redis server draws from one budget per source.

Each request runs Traefik's own Lua script (:data:`TOKEN_BUCKET_SCRIPT`, byte for byte:
its SHA1 is the one Traefik loads, so ``EVALSHA`` finds it whoever loaded it first) on
the key ``rate:<middleware>@kubernetescrd:<source>``, with Traefik's arguments: the
rate per microsecond, ``burst``, the key's TTL in seconds, the time in Unix
microseconds and the delay budget in microseconds. The script takes a token (past the
budget it gives it back) and answers the wait in microseconds.

The client is redis-py's asyncio client with go-redis' options and defaults, as
Traefik's ``redis.NewUniversalClient`` gets them (several endpoints: a Redis Cluster,
whose client sends each key to the node of its slot): a pool of ``poolSize`` connections
(10 per CPU by default, at most ``maxActiveConns``), waited for up to ``readTimeout``
+ 1 s; ``readTimeout`` bounds each answer, ``dialTimeout`` each connection. Like
go-redis, a command is retried (3 times, backoff from 8 ms to 512 ms) only when Redis
did not answer in time; a refused connection is an error at once. A client is made per
event loop (redis-py's connections belong to the loop that opened them).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..config.crd.middleware import split_host_port
from ..config.middlewares import Redis as RedisConfig
from ..transport.tls import client_tls_context

__all__ = ["KEY_PREFIX", "TOKEN_BUCKET_SCRIPT", "RedisError", "RedisStore", "go_float"]

KEY_PREFIX = "rate:"
"""Traefik's ``redisPrefix``: every bucket's key starts with it."""

TOKEN_BUCKET_SCRIPT = """
local key = KEYS[1]
local limit, burst, ttl, t, max_delay = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
    tonumber(ARGV[5])

local bucket = {
    limit = limit,
    burst = burst,
    tokens = 0,
    last = 0
}

local rl_source = redis.call('hgetall', key)

if #rl_source == 4 then
    -- Get bucket state from redis
    bucket.last = tonumber(rl_source[2])
    bucket.tokens = tonumber(rl_source[4])
end

local last = bucket.last
if t < last then
    last = t
end

local elapsed = t - last
local delta = bucket.limit * elapsed
local tokens = bucket.tokens + delta
tokens = math.min(tokens, bucket.burst)
tokens = tokens - 1

local wait_duration = 0
if tokens < 0 then
    wait_duration = (tokens * -1) / bucket.limit
    if wait_duration > max_delay then
        tokens = tokens + 1
        tokens = math.min(tokens, burst)
    end
end

redis.call('hset', key, 'last', t, 'tokens', tokens)
redis.call('expire', key, ttl)

return {tostring(true), tostring(wait_duration), tostring(tokens)}"""
"""Traefik 3.7.15's ``AllowTokenBucketRaw``, byte for byte (its leading newline included):
the script that binary sends (SHA1 ``7d2a5c08…``). The v3.7 branch's ``lua.go`` has since
read ``table.maxn(rl_source)`` for ``#rl_source``, the same on Redis' four-item reply."""

_RETRIES = 3  # go-redis' MaxRetries default
_MIN_BACKOFF, _MAX_BACKOFF = 0.008, 0.512  # go-redis' MinRetryBackoff, MaxRetryBackoff
_MICROSECOND = 1000  # ns


def go_float(value: float) -> str:
    """A float64 argument as go-redis writes it (``strconv.FormatFloat(v, 'f', -1, 64)``):
    the shortest digits that read back as ``value``, never an exponent."""
    return format(Decimal(repr(value)).normalize(), "f")


class _TLSConnection(Connection):
    """A connection through ``tls_context`` (as Go's ``tls.DialWithDialer``, the server
    name is the endpoint's host). redis-py's own TLS options read client certificates
    from files only, and Traefik's come from Secrets, as PEM text."""

    def __init__(self, *, tls_context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tls_context = tls_context

    def _connection_arguments(self) -> Any:
        return {**super()._connection_arguments(), "ssl": self.tls_context}


def tls_context(config: RedisConfig) -> ssl.SSLContext | None:
    """``ClientTLS.CreateTLSConfig`` for ``tls`` (None without)."""
    return None if config.tls is None else client_tls_context(config.tls)


def pool_size(config: RedisConfig) -> int:
    """go-redis' ``PoolSize`` (0: 10 per CPU), capped by ``MaxActiveConns``."""
    size = config.pool_size or 10 * (os.cpu_count() or 1)
    return min(size, config.max_active_conns) if config.max_active_conns else size


def _client(config: RedisConfig, context: ssl.SSLContext | None) -> Redis | RedisCluster:
    """go-redis' ``NewUniversalClient`` for Traefik's options, in redis-py: one endpoint
    is one server, several a Redis Cluster's seed list (where ``db`` is not used)."""
    addresses = [split_host_port(endpoint) for endpoint in config.endpoints]
    nodes = [address for address in addresses if address is not None]
    if len(nodes) != len(addresses):  # the config reader refuses them
        raise ValueError(f"not host:port: {config.endpoints!r}")
    # go-redis: a ReadTimeout of 0 is none; its PoolTimeout is ReadTimeout + 1 s.
    read_timeout = config.read_timeout if config.read_timeout > 0 else None
    common: dict[str, Any] = {
        "username": config.username or None,
        "password": config.password or None,
        "socket_timeout": read_timeout,
        "socket_connect_timeout": config.dial_timeout,
        "retry": Retry(
            ExponentialBackoff(cap=_MAX_BACKOFF, base=_MIN_BACKOFF),
            _RETRIES,
            supported_errors=(RedisTimeoutError,),
        ),
    }
    if len(nodes) > 1:
        # TLS towards a cluster is refused by the config reader (see docs/guides).
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            max_connections=pool_size(config),
            **common,
        )
    tls: dict[str, Any] = {}
    if context is not None:
        tls = {"connection_class": _TLSConnection, "tls_context": context}
    pool = BlockingConnectionPool(
        max_connections=pool_size(config),
        timeout=(read_timeout or 0) + 1,
        host=nodes[0][0],
        port=nodes[0][1],
        db=config.db,
        **common,
        **tls,
    )
    return Redis(connection_pool=pool)


class RedisStore:
    """Traefik's ``redisLimiter``: :meth:`allow` runs the token bucket script for a key.

    ``rate`` is in tokens a second (never infinite: without a limit no store is asked),
    ``max_delay`` in ns, ``ttl`` in seconds."""

    def __init__(
        self,
        config: RedisConfig,
        *,
        rate: float,
        burst: int,
        max_delay: int,
        ttl: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.clock = clock
        """Wall-clock ns (Go's ``time.Now()``): the script's ``t``, shared by every client."""
        self.context: ssl.SSLContext | None = None
        self.broken = ""
        """Why no client can be made (a certificate and key that do not pair: Traefik
        disables the router; here, as forwardAuth does, every request is a 500)."""
        try:
            self.context = tls_context(config)
        except ssl.SSLError as exc:
            self.broken = f"creating TLS config: {exc}"
        # The arguments that do not change, as go-redis writes them.
        self.rate = go_float(rate / 1_000_000)
        self.burst = str(burst)
        self.ttl = str(ttl)
        self.max_delay = str(max_delay // _MICROSECOND)
        self._clients: dict[
            asyncio.AbstractEventLoop, tuple[Redis | RedisCluster, AsyncScript]
        ] = {}

    def client(self) -> tuple[Redis | RedisCluster, AsyncScript]:
        """The client of the running event loop and the script on it (made on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            for old in [other for other in self._clients if other.is_closed()]:
                del self._clients[old]
            client = _client(self.config, self.context)
            entry = self._clients[loop] = (client, client.register_script(TOKEN_BUCKET_SCRIPT))
        return entry

    async def allow(self, key: str) -> int | None:
        """The wait (ns) for a request of ``key`` (``<middleware>:<source>``); None: the
        script refused it outright (Traefik's "No bursty traffic allowed"; its script
        never does). Raises :class:`RedisError` (an unreachable or failing Redis)."""
        if self.broken:
            raise RedisError(self.broken)
        _, script = self.client()
        now = self.clock() // _MICROSECOND
        args = [self.rate, self.burst, self.ttl, str(now), self.max_delay]
        values = await script(keys=[KEY_PREFIX + key], args=args)
        if not _parse_bool(values[0]):
            return None
        # Go: time.Duration(delay * float64(time.Microsecond)), truncated.
        return int(float(values[1]) * _MICROSECOND)

    async def aclose(self) -> None:
        """Close every connection (of the running loop's client)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.pop(loop, None)
        if entry is not None:
            await entry[0].aclose()


def _parse_bool(value: bytes | str) -> bool:
    """Go's ``strconv.ParseBool``; anything else is Traefik's error (a 500)."""
    text = value.decode() if isinstance(value, bytes) else value
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise RedisError(f"parsing ok value from redis rate lua script: {text!r}")
