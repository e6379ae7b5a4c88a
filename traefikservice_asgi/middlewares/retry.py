"""``retry`` (Traefik's ``pkg/middlewares/retry``): a request whose connection to its
server could not be made is tried again, through everything below the middleware (a
balancer picks again), up to ``attempts`` tries in all; the last try's answer is the
client's whatever it is.

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

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import Retry as RetryConfig
from ..entrypoint.context import is_request_not_sent

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


class Retry:
    def __init__(self, app: ASGIApp, config: RetryConfig) -> None:
        self.app = app
        self.attempts = config.attempts
        self.initial_interval = config.initial_interval
        self.random = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.attempts == 1:
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        waits = backoff_intervals(self.initial_interval, self.attempts, self.random)
        for wait in waits:
            failed = False

            async def guarded(message: Message) -> None:
                nonlocal failed
                if message["type"] == "http.response.start" and is_request_not_sent(message):
                    failed = True
                if not failed:
                    await send(message)

            await self.app(scope, replay.reader(), guarded)
            if not failed:
                return
            if wait > 0:
                await asyncio.sleep(wait)
        await self.app(scope, replay.reader(), send)
