"""The entry point's listener: every connection waiting to be accepted is accepted at once.

Go's ``http.Server`` (Traefik's entry point) accepts in its own goroutine, as fast as
clients connect. libuv, under uvloop, accepts one connection per event loop iteration
(since libuv 1.45, libuv/libuv#3696), relying on the listening socket staying readable:
when hundreds of clients connect while the loop is busy serving those already accepted,
each iteration takes milliseconds and the last clients wait a second or more before
their connection is even accepted, with their first request already sent. The
``-c256`` benchmark showed exactly that (``bench/README.md``, "The -c256 tail").

:class:`Listener` watches the listening socket with ``add_reader`` and, each time it is
readable, accepts until the kernel's queue is empty (at most ``backlog`` at a time, as
asyncio's own selector loop does); each accepted socket becomes a transport of the loop
with ``connect_accepted_socket``. :class:`EntryPointLoop` is uvloop's loop whose
``create_server`` serves plain TCP through a :class:`Listener` (TLS and Unix sockets
keep uvloop's own server); :func:`loop_factory` picks it where uvicorn would pick
uvloop. asyncio's selector loop already accepts in batches and is left as it is.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ACCEPT_RETRY_DELAY", "Listener", "bind_sockets", "loop_factory"]

logger = logging.getLogger("traefikservice_asgi.entrypoint")

ACCEPT_RETRY_DELAY = 1.0
"""Seconds without accepting after the process ran out of descriptors or memory (asyncio
and Go's ``http.Server`` both back off rather than spin on the error)."""

_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""``accept`` errors that say the process or the machine has no room for a connection."""


class Listener(asyncio.AbstractServer):
    """Accepts connections on ``sockets`` (listening, TCP) into ``protocol_factory``'s
    protocols on ``loop``, draining each socket's accept queue whenever it is readable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sockets: Iterable[socket.socket],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sockets = list(sockets)
        self._backlog = max(1, backlog)
        self._connecting: set[asyncio.Task[None]] = set()
        self._serving = False
        self._closed = asyncio.Event()

    # -- asyncio.AbstractServer ------------------------------------------------------------

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._serving or self._closed.is_set():
            return
        self._serving = True
        for sock in self._sockets:
            sock.setblocking(False)
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await self._closed.wait()

    def close(self) -> None:
        """Stop accepting and close the listening sockets; accepted connections live on."""
        if self._closed.is_set():
            return
        self._stop_reading()
        self._serving = False
        for sock in self._sockets:
            sock.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)

    # -- accepting -------------------------------------------------------------------------

    def _stop_reading(self) -> None:
        for sock in self._sockets:
            if sock.fileno() != -1:
                self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(self._backlog):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    continue  # that client gave up (ECONNABORTED...): the next one
                logger.error(
                    "cannot accept connections (%s): retrying in %s s", exc, ACCEPT_RETRY_DELAY
                )
                self._loop.remove_reader(sock.fileno())
                self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume, sock)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _resume(self, sock: socket.socket) -> None:
        if self._serving and sock.fileno() != -1:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError as exc:  # the client went away before its transport was made
            logger.debug("accepted connection lost before it was served: %s", exc)
            conn.close()


def bind_sockets(host: str | None, port: int, *, family: int, flags: int) -> list[socket.socket]:
    """Listening-ready sockets for ``host:port``, bound as asyncio's ``create_server``
    binds them (every address the name resolves to, ``SO_REUSEADDR``, IPv6 only on
    IPv6 sockets)."""
    infos = socket.getaddrinfo(
        host, port, family=family, type=socket.SOCK_STREAM, flags=flags | socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for af, kind, proto, _, address in infos:
            if (af, address) in seen:
                continue
            seen.add((af, address))
            sock = socket.socket(af, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def loop_factory(
    base: Callable[[], asyncio.AbstractEventLoop] | None,
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``base`` (uvicorn's choice of loop), with :class:`EntryPointLoop` in place of
    uvloop's; any other loop as it is."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the package
        return base
    if base is not uvloop.new_event_loop:
        return base
    return _entry_point_loop_class()


_LOOP_CLASS: type[asyncio.AbstractEventLoop] | None = None


def _entry_point_loop_class() -> type[asyncio.AbstractEventLoop]:
    """uvloop's ``Loop`` with :class:`Listener` behind ``create_server`` (built once, on
    first use: uvloop is only imported where uvicorn picked it)."""
    global _LOOP_CLASS
    if _LOOP_CLASS is not None:
        return _LOOP_CLASS
    import uvloop

    class EntryPointLoop(uvloop.Loop):
        """uvloop, except that plain TCP servers accept every waiting connection at
        once (:class:`Listener`)."""

        async def create_server(  # type: ignore[override]
            self,
            protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: str | None = None,
            port: int | None = None,
            *,
            family: int = socket.AF_UNSPEC,
            flags: int = socket.AI_PASSIVE,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: Any = None,
            start_serving: bool = True,
            **options: Any,
        ) -> asyncio.AbstractServer:
            plain_tcp = ssl is None and not options.get("reuse_port")
            if sock is not None:
                plain_tcp = plain_tcp and sock.family in (socket.AF_INET, socket.AF_INET6)
            elif host is None and port is None:
                plain_tcp = False
            if not plain_tcp:
                uvloop_server: Any = super().create_server
                return await uvloop_server(  # type: ignore[no-any-return]
                    protocol_factory,
                    host,
                    port,
                    family=family,
                    flags=flags,
                    sock=sock,
                    backlog=backlog,
                    ssl=ssl,
                    start_serving=start_serving,
                    **options,
                )
            if sock is not None:
                sockets = [sock]
            else:
                sockets = await self.run_in_executor(
                    None, lambda: bind_sockets(host, port or 0, family=family, flags=flags)
                )
            server = Listener(self, protocol_factory, sockets, backlog)
            if start_serving:
                await server.start_serving()
            return server

    _LOOP_CLASS = EntryPointLoop
    return EntryPointLoop
