"""The gateway and its admin listener in one process, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..middleware import TraefikServiceMiddleware

__all__ = ["open_connections", "run_with_admin", "serve_with_admin", "start_admin_thread"]


def open_connections(ports: dict[str, int]) -> dict[str, int]:
    """Established TCP connections to each local port (by entry point), from the kernel's
    tables (``/proc/net/tcp*``): what Traefik's ``traefik_open_connections`` counts,
    summed over every process sharing the port (``--workers N``: read by the parent, off
    the workers' loops; milliseconds per scrape on a busy machine). 0 where the tables
    cannot be read."""
    wanted = {port: name for name, port in ports.items()}
    counts = dict.fromkeys(ports, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or fields[3] != "01":  # 01: ESTABLISHED
                    continue
                port = int(fields[1].rsplit(":", 1)[1], 16)
                name = wanted.get(port)
                if name is not None:
                    counts[name] += 1
    return counts


def _quiet_server() -> type[Any]:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server leaving the signals to the main one, which stops it."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


def _side_server() -> type[Any]:
    class SideServer(_quiet_server()):  # type: ignore[misc]
        """The admin listener beside the main server, on its loop: it ticks once a
        second, not uvicorn's ten times, and :meth:`stop` wakes it at once. uvicorn's
        tick (a timer, a coroutine, a task step) is the same work on the main
        server's loop whatever the traffic; ten a second was what ``--admin-port``
        cost a request under valgrind's slowdown (bench/README.md)."""

        wake: asyncio.Future[None] | None = None

        async def main_loop(self) -> None:
            loop = asyncio.get_running_loop()
            counter = 0
            while not await self.on_tick(counter):
                # Every tick refreshes the Date header, as uvicorn's tenth one does.
                counter += 10
                self.wake = wake = loop.create_future()
                timer = loop.call_later(1.0, _wake, wake)
                try:
                    await wake
                finally:
                    timer.cancel()

        def stop(self) -> None:
            """Stop serving (from the loop's thread), without waiting for the tick."""
            self.should_exit = True
            _wake(self.wake)

    return SideServer


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def serve_with_admin(
    app: TraefikServiceMiddleware, main: Any, admin_host: str, admin_port: int
) -> None:
    """Serve the uvicorn server ``main`` (``app`` under the entry point's config) and
    ``app``'s admin app on ``admin_host:admin_port`` on the running loop, until ``main``
    stops (its signal handlers stop both): ``/ping`` answers 503 from then on, and the
    admin listener closes once ``main`` has."""
    import uvicorn

    admin = app.admin_app
    side = _side_server()(
        uvicorn.Config(
            admin,
            host=admin_host,
            port=admin_port,
            log_level=main.config.log_level,
            access_log=False,
            lifespan="on",
            server_header=False,
        )
    )

    if app.metrics is not None:
        # uvicorn's own sets of open connections: exact, and free to read (the kernel's
        # tables cost milliseconds per scrape on a busy machine).
        names = (app.observability.entry_point, app.observability.admin_entry_point)
        app.metrics.open_connections = lambda: {
            names[0]: len(main.server_state.connections),
            names[1]: len(side.server_state.connections),
        }

    task = asyncio.ensure_future(side.serve())
    try:
        await main.serve()
    finally:
        admin.shutting_down = True
        side.stop()
        await task


def run_with_admin(
    app: TraefikServiceMiddleware, config: Any, admin_host: str, admin_port: int
) -> bool:
    """Serve ``app`` with the uvicorn ``config`` (the entry point's) and its admin app
    on ``admin_host:admin_port``, until interrupted. Returns whether the main server
    started."""
    import uvicorn

    main = uvicorn.Server(config)

    # The main server's loop (uvloop where uvicorn picks it), as uvicorn.run would.
    from uvicorn._compat import asyncio_run

    asyncio_run(
        serve_with_admin(app, main, admin_host, admin_port),
        loop_factory=main.config.get_loop_factory(),
    )
    return bool(main.started)


def start_admin_thread(
    app: TraefikServiceMiddleware, port: int, admin_host: str, admin_port: int, directory: str
) -> Callable[[], None]:
    """For ``--workers N``: serve, in a thread of the parent, an admin app whose
    ``/metrics`` adds up the workers' snapshots in ``directory``. Returns the stopper."""
    import threading

    import uvicorn

    from .admin import AdminApp
    from .workers import MergedCollector, MergedMetrics

    merged = MergedMetrics(app.observability, directory)
    ports = {app.observability.entry_point: port, app.observability.admin_entry_point: admin_port}
    merged.open_connections = lambda: open_connections(ports)
    admin = AdminApp(app, collector=MergedCollector(merged))
    server = _quiet_server()(
        uvicorn.Config(
            admin,
            host=admin_host,
            port=admin_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
        )
    )
    thread = threading.Thread(target=server.run, name="traefikservice-asgi-admin", daemon=True)
    thread.start()

    def stop() -> None:
        admin.shutting_down = True
        server.should_exit = True
        thread.join(10)

    return stop
