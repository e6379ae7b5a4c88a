"""A real ``redis-server`` (Debian's package) for the tests of the rateLimit Redis store.

    with RedisServer() as server:
        server.client().ping()

It listens on a free 127.0.0.1 port, keeps nothing on disk (``--save ''``, no AOF), and
is stopped by its PID. ``stop()`` then ``start()`` brings it back on the same port (a
Redis that went away and came back); ``args`` adds configuration (``--requirepass``,
``--tls-port``...). Tests skip when ``redis-server`` is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

import redis

from .traefik import free_port
from .wait import until

__all__ = ["REDIS_SERVER", "RedisServer"]

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    def __init__(self, *args: str, port: int = 0, log: Path | None = None) -> None:
        self.args = args
        self.port = port or free_port()
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options: object) -> redis.Redis:
        """A synchronous client for the test's own looks (``KEYS``, ``TTL``...)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    def start(self) -> RedisServer:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", *self.args]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        until(self._answers, f"redis-server on {self.endpoint} answers PING")
        return self

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as probe:
                probe.ping()
        except redis.AuthenticationError:
            return True  # it answers; the test's client has the password
        except redis.RedisError:
            return False
        return True

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
