"""A real ``redis-server`` (Debian's package) for the tests of the rateLimit Redis store.

    with RedisServer() as server:
        server.client().ping()

It listens on a free 127.0.0.1 port, keeps nothing on disk (``--save ''``, no AOF), and
is stopped by its PID. ``stop()`` then ``start()`` brings it back on the same port (a
Redis that went away and came back); ``args`` adds configuration (``--requirepass``,
``--tls-port``...). :func:`redis_cluster` starts a Redis Cluster of three such servers
(one primary per third of the slots, no replica). Tests skip when ``redis-server`` is not
installed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import redis

from .procs import stop_process
from .traefik import free_port
from .wait import until

__all__ = ["REDIS_SERVER", "RedisServer", "redis_cluster"]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


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
            tail = self.log.read_text(errors="replace")[-2000:] if self.log else "(no log)"
            raise RuntimeError(f"redis-server exited with {self._proc.returncode}:\n{tail}")
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
        if proc is not None:
            stop_process(proc, terminate=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def redis_cluster(folder: Path, size: int = 3) -> Iterator[list[RedisServer]]:
    """``size`` servers joined by ``redis-cli --cluster create``, every slot served."""
    with contextlib.ExitStack() as stack:
        servers = []
        for i in range(size):
            args = ("--cluster-enabled", "yes", "--cluster-config-file", str(folder / f"n{i}.conf"))
            # The bus port, by default port + 10000, may be taken or past 65535.
            args += ("--cluster-port", str(free_port()))
            server = RedisServer(*args, log=folder / f"n{i}.log")
            servers.append(stack.enter_context(server))
        if REDIS_CLI is None:
            raise RuntimeError("redis-cli is not installed: apt-get install redis-tools")
        command = [REDIS_CLI, "--cluster", "create", *(s.endpoint for s in servers)]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(command, check=True, capture_output=True, timeout=30)

        def ready() -> bool:
            for server in servers:
                info = server.client().cluster("info")
                if info.get("cluster_state") != "ok":
                    return False
            return True

        until(ready, "every node says cluster_state:ok", timeout=20)
        yield servers
