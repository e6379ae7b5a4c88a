"""``retry`` (Traefik's ``pkg/middlewares/retry``): a request whose connection to its
server could not be made (unless ``disableRetryOnNetworkError``), or whose answer has a
status of ``status``, is tried again, through everything below the middleware (a
balancer picks again), up to ``attempts`` tries in all; the last try's answer is the
client's whatever it is. Once ``timeout`` has passed since the first try, an answer is
the client's.

A status is retried only for an idempotent method (not ``POST``, ``PATCH``, ``LOCK``;
any with ``retryNonIdempotentMethod``) whose body, read up front, holds in
``maxRequestBodyBytes`` (2 MiB; -1: any), as Traefik keeps it for the replays.

Traefik retries when the request reached the proxy and no byte of it was written
(``httptrace``'s ``WroteHeaders`` never fired: a refused connection, a dial timeout); an
answer from the server, a failure after the request was sent, or an error answered
before the proxy (``no available server``) is never retried. The leaf marks such a
failure (:func:`~..entrypoint.context.is_request_not_sent`); its answer is swallowed and
the next try starts. Between tries the wait is cenkalti/backoff's exponential backoff:
``initialInterval``, multiplied by ``2^(1/(attempts-1))`` each time, each wait randomized
by +-50 % (``initialInterval`` 0: no wait). Whatever body the failed try read is replayed
to the next one, then the rest is read from the client.
"""

from __future__ import annotations

import asyncio
import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import Retry as RetryConfig
from ..entrypoint.context import forward_of, is_request_not_sent

__all__ = ["Retry", "backoff_intervals"]

RANDOMIZATION = 0.5
MAX_INTERVAL = 60.0


def backoff_intervals(initial: float, attempts: int, rand: random.Random) -> list[float]:
    """The ``attempts - 1`` waits of cenkalti/backoff's ``ExponentialBackOff`` as
    Traefik sets it (randomization 0.5, at most 60 s a wait)."""
    if attempts < 2 or initial <= 0:
        return [0.0] * max(attempts - 1, 0)
    multiplier = 2 ** (1 / (attempts - 1))
    current, out = initial, []
    for _ in range(attempts - 1):
        delta = RANDOMIZATION * current
        out.append(current - delta + rand.random() * (2 * delta + 1e-9))
        current = min(current * multiplier, MAX_INTERVAL)
    return out


class _Replay:
    """A ``receive`` that replays what earlier tries read, then reads on, recording."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.read: list[Message] = []

    async def prefetch(self, limit: int) -> bool:
        """Read the body up front, as Traefik's ``NewReusableRequest``: all of it when
        ``limit`` < 0, else up to ``limit + 1`` bytes; whether it fits in ``limit``."""
        size = 0
        while not self.read or self.read[-1].get("more_body", False):
            if self.read and self.read[-1]["type"] != "http.request":
                return False  # the client is gone
            if 0 <= limit < size:
                return False
            message = await self.receive()
            self.read.append(message)
            size += len(message.get("body", b""))
        return limit < 0 or size <= limit

    def reader(self) -> Receive:
        position = 0

        async def receive() -> Message:
            nonlocal position
            if position < len(self.read):
                position += 1
                return self.read[position - 1]
            message = await self.receive()
            self.read.append(message)
            position += 1
            return message

        return receive


_NON_IDEMPOTENT = frozenset({"POST", "PATCH", "LOCK"})


class Retry:
    def __init__(self, app: ASGIApp, config: RetryConfig) -> None:
        self.app = app
        self.config = config
        self.random = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        if scope["type"] != "http" or config.attempts == 1:
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        status = config.status
        if status:
            forward = forward_of(scope)
            if forward.method in _NON_IDEMPOTENT and not config.retry_non_idempotent_method:
                status = ()
            elif forward.has_body and not await replay.prefetch(config.max_request_body_bytes):
                status = ()  # a body too large to keep: no retry on a status
        network = not config.disable_retry_on_network_error
        start = time.monotonic()
        waits = backoff_intervals(config.initial_interval, config.attempts, self.random)
        for wait in waits:
            retried = False

            async def guarded(message: Message) -> None:
                nonlocal retried
                if message["type"] == "http.response.start":
                    timed_out = 0 < config.timeout <= time.monotonic() - start
                    retried = not timed_out and (
                        (network and is_request_not_sent(message))
                        or any(low <= message["status"] <= high for low, high in status)
                    )
                if not retried:
                    await send(message)

            await self.app(scope, replay.reader(), guarded)
            if not retried:
                return
            if wait > 0:
                await asyncio.sleep(wait)
        await self.app(scope, replay.reader(), send)
