"""Active health checks: probes against real backends, skipping, 503, failover, lifecycle.

Intervals are short (50-100 ms) and every wait is on a condition (a log line, a probe
count), bounded by a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import selectors
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app
from traefikservice_asgi import create_app
from traefikservice_asgi.config import Config, ConfigError, HealthCheck
from traefikservice_asgi.config import load_config_text as _load_config_text
from traefikservice_asgi.config.models import Origin
from traefikservice_asgi.healthcheck import HealthChecks, ServerHealthChecker
from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin
from traefikservice_asgi.transport import ClientHolder

WAIT = 10.0

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  type: ExternalName
  externalName: app.example.test
  ports: [{port: 80}]
"""


def load_config_text(text: str, **options: Any) -> Config:
    """Health checks exist only on ExternalName Services, which Traefik (and the
    gateway) serve only with allowExternalNameServices."""
    return _load_config_text(text, allow_external_name_services=True, **options)


def route(health_check: str, host: str = "hc.test") -> str:
    return f"""{SERVICE}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`{host}`)
      services:
        - name: app
          port: 80
          healthCheck: {health_check}
"""


class StateLog(logging.Handler):
    """The health checker's info lines, waited on from the test thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            with self.cond:
                self.lines.append(record.getMessage())
                self.cond.notify_all()

    def wait_for(self, fragment: str, count: int = 1) -> None:
        def seen() -> bool:
            return sum(fragment in line for line in self.lines) >= count

        with self.cond:
            if not self.cond.wait_for(seen, WAIT):
                raise AssertionError(f"no log line with {fragment!r}: {self.lines}")


@pytest.fixture
def states() -> Iterator[StateLog]:
    handler = StateLog()
    logger = logging.getLogger("traefikservice_asgi.healthcheck")
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def served_by(url: str, n: int, host: str = "hc.test") -> list[str]:
    out = []
    with httpx.Client(base_url=url, headers={"Host": host}) as client:
        for _ in range(n):
            response = client.get("/")
            ok = response.status_code == 200
            out.append(
                response.text.removeprefix("Hello ").strip() if ok else str(response.status_code)
            )
    return out


# ------------------------------------------------------------------ skipping, 503


async def _stub(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def test_a_server_failing_its_probe_is_skipped_and_the_others_keep_their_order(
    states: StateLog,
) -> None:
    with RecordingBackend("a") as a, RecordingBackend("b") as b, RecordingBackend("c") as c:
        config = load_config_text(
            route("{path: /health, interval: 100ms}"),
            backends={"default/app:80": [a.url, b.url, c.url]},
        )
        app = create_app(config, rng=random.Random(7))
        # The same balancer, unproxied: Traefik's EDF schedule for these three servers.
        names = {a.url: "a", b.url: "b", c.url: "c"}
        reference = WeightedRoundRobin(
            [Child(u, _stub) for u in names], rng=random.Random(7), name="ref"
        )

        def expected(n: int) -> list[str]:
            return [names[reference.next_child() or ""] for _ in range(n)]

        with serve_app(app) as url:
            assert served_by(url, 6) == expected(6)

            b.status = 503
            states.wait_for(f"server {b.url} of service")
            assert "is DOWN: received error status code: 503" in states.lines[-1]
            # The full EDF sequence with b filtered out: a and c keep their turns.
            reference.set_status(b.url, False)
            after = expected(8)
            assert "b" not in after
            assert served_by(url, 8) == after

            b.status = 200
            states.wait_for("is UP again")
            assert "b" in served_by(url, 3)
        assert len(app.health_checks) == 0


def test_every_server_down_answers_503_no_available_server(states: StateLog) -> None:
    with RecordingBackend("a", status=500) as a, RecordingBackend("b", status=500) as b:
        config = load_config_text(
            route("{interval: 50ms}"), backends={"default/app:80": [a.url, b.url]}
        )
        with serve_app(create_app(config)) as url:
            states.wait_for("is DOWN", count=2)
            response = httpx.get(url, headers={"Host": "hc.test"})
            assert response.status_code == 503
            assert response.text == "no available server\n"


def test_a_single_server_with_a_health_check_goes_down_too(states: StateLog) -> None:
    with RecordingBackend("a", status=502) as a:
        config = load_config_text(route("{interval: 50ms}"), backends={"default/app:80": a.url})
        with serve_app(create_app(config)) as url:
            states.wait_for("is DOWN")
            assert httpx.get(url, headers={"Host": "hc.test"}).status_code == 503
            a.status = 200
            states.wait_for("is UP again")
            assert httpx.get(url, headers={"Host": "hc.test"}).text == "Hello a\n"


def test_a_refused_connection_is_down(states: StateLog) -> None:
    with RecordingBackend("a") as a:
        dead = RecordingBackend("dead")
        with dead:
            dead_url = dead.url
        config = load_config_text(
            route("{interval: 50ms, timeout: 1s}"),
            backends={"default/app:80": [a.url, dead_url]},
        )
        with serve_app(create_app(config)) as url:
            states.wait_for(f"server {dead_url} of service")
            assert "HTTP request failed" in states.lines[-1]
            assert served_by(url, 4) == ["a"] * 4


# ----------------------------------------------------------------------- failover

FAILOVER = (
    SERVICE
    + """
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: fo, namespace: default}
spec:
  failover:
    service: {name: app, port: 80, healthCheck: {interval: 50ms}}
    fallback: {name: spare, port: 80}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`hc.test`)
      services: [{name: fo, kind: TraefikService}]
"""
)


def test_failover_switches_to_the_fallback_while_its_mains_only_server_is_down(
    states: StateLog,
) -> None:
    with RecordingBackend("main") as main, RecordingBackend("spare") as spare:
        config = load_config_text(
            FAILOVER, backends={"default/app:80": main.url, "default/spare:80": spare.url}
        )
        with serve_app(create_app(config)) as url:
            assert served_by(url, 2) == ["main", "main"]
            main.status = 503
            states.wait_for("is DOWN")
            before = main.count
            assert served_by(url, 3) == ["spare"] * 3
            # Only probes reached the main meanwhile, no request of the client.
            assert all(
                r.path == "/" and r.header("X-Forwarded-For") is None
                for r in main.requests[before:]
            )
            main.status = 200
            states.wait_for("is UP again")
            assert served_by(url, 2) == ["main", "main"]


def test_a_weighted_parent_keeps_picking_a_child_whose_servers_are_down(
    states: StateLog,
) -> None:
    # The CRD's weighted TraefikService has no healthCheck, so, as in Traefik, it never
    # follows its children's health: the down child answers 503 in its turn.
    text = (
        SERVICE
        + """
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: w, namespace: default}
spec:
  weighted:
    services:
      - {name: app, port: 80, healthCheck: {interval: 50ms}}
      - {name: other, port: 80}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`hc.test`)
      services: [{name: w, kind: TraefikService}]
"""
    )
    with RecordingBackend("app", status=500) as app_b, RecordingBackend("other") as other:
        config = load_config_text(
            text, backends={"default/app:80": app_b.url, "default/other:80": other.url}
        )
        with serve_app(create_app(config)) as url:
            states.wait_for("is DOWN")
            assert sorted(served_by(url, 4)) == ["503", "503", "other", "other"]


# --------------------------------------------------------------------- the probe


def test_path_method_headers_hostname_and_status_reach_the_probe(states: StateLog) -> None:
    with RecordingBackend("a", status=204) as a:
        config = load_config_text(
            route(
                "{path: /healthz?deep=1, method: HEAD, hostname: probe.test, status: 204, "
                "interval: 50ms, headers: {X-Probe: 'yes', User-Agent: checker}}"
            ),
            backends={"default/app:80": a.url},
        )
        app = create_app(config)
        with serve_app(app):
            a.wait_for_requests(2)
            probe = a.requests[0]
            assert (probe.method, probe.path, probe.query) == ("HEAD", "/healthz", "deep=1")
            assert probe.header("Host") == "probe.test"
            assert probe.header("X-Probe") == "yes"
            assert probe.header("User-Agent") == "checker"
            assert probe.header("Accept-Encoding") is None  # Go adds none to a HEAD
            assert not any("DOWN" in line for line in states.lines)  # 204 is the one wanted
            a.status = 200
            states.wait_for("is DOWN: received error status code: 200 expected status code: 204")


def test_scheme_port_and_a_relative_path_build_the_probe_url() -> None:
    def checker(**fields: Any) -> ServerHealthChecker:
        config = HealthCheck(Origin(None, None, "", ""), **fields)
        return ServerHealthChecker("s", config, _Balancer(), [], ClientHolder())

    assert checker(path="health").probe_url("http://10.0.0.1:80") == "http://10.0.0.1:80/health"
    assert checker().probe_url("http://h:80") == "http://h:80"
    assert (
        checker(path="/h", scheme="https", port=8443).probe_url("http://[::1]:80")
        == "https://[::1]:8443/h"
    )
    assert checker(path="/health").probe_url("h2c://10.0.0.1:80") == "h2c://10.0.0.1:80/health"
    assert checker(path="hz", port=81).probe_url("h2c://h:80/") == "h2c://h:81/hz"
    request = checker(path="/h", headers=(("Host", "ignored"),)).probe_request("http://h:80")
    assert request.headers["Host"] == "h"  # the server's, not one from the headers
    assert request.headers["User-Agent"] == "Go-http-client/1.1"
    assert request.headers["Accept-Encoding"] == "gzip"


def test_redirects_are_followed_unless_follow_redirects_is_false() -> None:
    async def go(follow: bool) -> str | None:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/health":
                return httpx.Response(302, headers={"Location": "/down"})
            return httpx.Response(503)

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        config = HealthCheck(Origin(None, None, "", ""), path="/health", follow_redirects=follow)
        check = ServerHealthChecker("s", config, _Balancer(), [], ClientHolder(client))
        try:
            return await check.check("http://h:80")
        finally:
            await client.aclose()

    assert asyncio.run(go(True)) == "received error status code: 503"
    assert asyncio.run(go(False)) is None  # a 302 is UP when not followed


def test_a_probe_slower_than_the_timeout_is_down() -> None:
    with RecordingBackend("slow", delay=1.0) as slow:
        config = HealthCheck(Origin(None, None, "", ""), timeout=0.1)
        check = ServerHealthChecker("s", config, _Balancer(), [], ClientHolder())

        async def go() -> tuple[str | None, float]:
            began = time.monotonic()
            reason = await check.check(slow.url)
            await check.holder.aclose()
            return reason, time.monotonic() - began

        reason, took = asyncio.run(go())
        assert reason == "no answer within 0.1s"
        assert took < 0.9


class _Balancer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def set_status(self, child: str, up: bool) -> None:
        self.calls.append((child, up))


class _VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the loop would wait, and then straight
    to its next timer: times are exact whatever the load on the machine. For code that
    does no real I/O (an ``httpx.MockTransport``); waiting with no timer is an error."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._now


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: _VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("the virtual clock waits for I/O with no timer set")
            self._loop._now += timeout
        return ready


def test_intervals_healthy_every_interval_unhealthy_every_unhealthy_interval() -> None:
    # On a virtual clock (seconds that take no time), so each probe time is exact.
    interval, unhealthy = 1.0, 4.0
    times: list[float] = []

    async def go() -> tuple[float, list[tuple[str, bool]]]:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def handler(request: httpx.Request) -> httpx.Response:
            times.append(loop.time())
            if len(times) >= 6:
                done.set()
            return httpx.Response(200 if len(times) < 3 else 500)  # probes 3.. fail

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        config = HealthCheck(
            Origin(None, None, "", ""), interval=interval, unhealthy_interval=unhealthy
        )
        balancer = _Balancer()
        checks = HealthChecks(
            [ServerHealthChecker("s", config, balancer, ["http://h:80"], ClientHolder(client))]
        )
        started = loop.time()
        checks.start()
        await asyncio.wait_for(done.wait(), 60 * unhealthy)
        await checks.aclose()
        await client.aclose()
        return started, balancer.calls

    loop = _VirtualClockLoop()
    try:
        started, calls = loop.run_until_complete(go())
    finally:
        loop.close()
    assert calls == [("http://h:80", up) for up in (True, True, False, False, False, False)]
    # Two clocks started together: the first probe one interval after the start (not at
    # once), then every interval while UP. Probe 3 (at 3 s) failed: the next probe is at
    # the unhealthy clock's next tick, 4 s (not 3 + 4 s), then every 4 s.
    assert [t - started for t in times] == [1.0, 2.0, 3.0, 4.0, 8.0, 12.0]


# -------------------------------------------------------------------- lifecycle


def _lifespan_run(app: Any, during: Callable[[], Any]) -> list[str]:
    """Run the lifespan of ``app``: startup, ``during()`` (awaited), shutdown."""

    async def go() -> list[str]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return await queue.get()

        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                started.set()

        task = asyncio.create_task(app({"type": "lifespan"}, receive, send))
        await queue.put({"type": "lifespan.startup"})
        await asyncio.wait_for(started.wait(), WAIT)
        await during()
        await queue.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, WAIT)
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert not [n for n in names if n.startswith("healthcheck")], names
        return sent

    return asyncio.run(go())


def test_probe_tasks_start_with_the_lifespan_and_are_gone_after_shutdown() -> None:
    with RecordingBackend("a") as a, RecordingBackend("b") as b:
        config = load_config_text(
            route("{interval: 50ms}"), backends={"default/app:80": [a.url, b.url]}
        )
        app = create_app(config)

        async def during() -> None:
            assert len(app.health_checks) == 2  # one task per server
            await asyncio.to_thread(a.wait_for_requests, 1)

        sent = _lifespan_run(app, during)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert len(app.health_checks) == 0


def test_a_slow_server_does_not_delay_the_probes_of_the_others() -> None:
    """Traefik probes a service's servers one after the other on each tick, so one slow
    server delays the others' probes; here each server has its own task: while the slow
    one's probe waits out its 2 s timeout, the fast one is probed every 50 ms."""
    with RecordingBackend("slow", delay=30) as slow, RecordingBackend("fast") as fast:
        config = load_config_text(
            route("{interval: 50ms, timeout: 2s}"),
            backends={"default/app:80": [slow.url, fast.url]},
        )
        app = create_app(config)

        async def during() -> None:
            await asyncio.to_thread(slow.wait_for_requests, 1)  # its probe now hangs
            fast.clear()
            await asyncio.sleep(0.6)

        _lifespan_run(app, during)
        # Ticks of 50 ms over 0.6 s: about 12 probes; one after the other, at most 1.
        assert fast.count >= 5
        assert slow.count == 1


def test_without_a_lifespan_the_first_request_starts_the_probes_and_aclose_stops_them() -> None:
    with RecordingBackend("a") as a:
        config = load_config_text(route("{interval: 50ms}"), backends={"default/app:80": a.url})
        app = create_app(config)

        async def go() -> None:
            assert len(app.health_checks) == 0
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hc.test") as c:
                assert (await c.get("/")).text == "Hello a\n"
            assert len(app.health_checks) == 1
            await asyncio.to_thread(a.wait_for_requests, 2)
            await app.aclose()
            assert len(app.health_checks) == 0
            assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("healthcheck")]

        asyncio.run(go())


# ------------------------------------------------------------------------- config


def _issues(text: str, **backends: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename="hc.yaml", backends=backends or None)
    return [str(issue) for issue in info.value.issues]


def test_health_check_defaults_are_traefiks() -> None:
    config = load_config_text(route("{interval: 10}"), backends={"default/app:80": "http://h:1"})
    hc = config.routes[0].service.health_check  # type: ignore[union-attr]
    assert hc is not None
    assert (hc.interval, hc.unhealthy_interval, hc.timeout) == (10.0, 10.0, 5.0)
    assert (hc.method, hc.follow_redirects, hc.status, hc.path) == ("GET", True, 0, "")
    config = load_config_text(route("{}"), backends={"default/app:80": "http://h:1"})
    hc = config.routes[0].service.health_check  # type: ignore[union-attr]
    assert hc is not None and (hc.interval, hc.unhealthy_interval) == (30.0, 30.0)


def test_health_check_only_for_external_name_services_as_in_traefik_v3() -> None:
    cluster_ip = route("{path: /health}").replace(
        "type: ExternalName\n  externalName: app.example.test\n", ""
    )
    (issue,) = _issues(cluster_ip)
    assert issue == (
        "hc.yaml:16: IngressRoute default/r: spec.routes[0].services[0].healthCheck: "
        "healthCheck allowed only for ExternalName services: default/app is ClusterIP"
    )
    no_document = route("{path: /health}").split("---", 1)[1]
    (issue,) = _issues(no_document, **{"default/app:80": "http://h:1"})
    assert issue.endswith(
        "healthCheck allowed only for ExternalName services: default/app has no Service document"
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "{mode: grpc}",
            "healthCheck.mode: not supported by traefikservice-asgi: gRPC health "
            "checks are not implemented",
        ),
        ("{mode: tcp}", 'healthCheck.mode: must be http or grpc, got "tcp"'),
        ("{interval: 0s}", 'healthCheck.interval: must be more than 0, got "0s"'),
        (
            "{timeout: soon}",
            'healthCheck.timeout: must be a duration such as 30s or 1m30s, got "soon"',
        ),
        ("{unhealthyInterval: -1}", "healthCheck.unhealthyInterval: must not be negative, got -1"),
        ("{status: 42}", "healthCheck.status: must be an HTTP status from 100 to 599, got 42"),
        ("{port: 70000}", "healthCheck.port: must be an integer from 0 to 65535, got 70000"),
        ("{scheme: ftp}", 'healthCheck.scheme: must be http, https or h2c, got "ftp"'),
        (
            "{method: 'GE T'}",
            'healthCheck.method: must be an HTTP method such as GET or HEAD, got "GE T"',
        ),
        (
            "{headers: [a]}",
            "healthCheck.headers: must be a mapping of header names to values, got a list",
        ),
        (
            "{followRedirects: maybe}",
            'healthCheck.followRedirects: must be true or false, got "maybe"',
        ),
        (
            "{intervall: 1s}",
            "healthCheck.intervall: unknown field \"intervall\" (did you mean 'interval'?)",
        ),
    ],
)
def test_bad_health_check_fields_are_located_errors(written: str, message: str) -> None:
    (issue,) = _issues(route(written))
    assert issue.startswith("hc.yaml:")
    assert issue.endswith(f"IngressRoute default/r: spec.routes[0].services[0].{message}")


def test_health_check_on_a_traefik_service_reference_is_refused() -> None:
    text = """
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: w, namespace: default}
spec:
  weighted:
    services: [{name: x, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`a`)
      services: [{name: w, kind: TraefikService, healthCheck: {}}]
"""
    (issue,) = _issues(text)
    assert issue.endswith(
        "spec.routes[0].services[0].healthCheck: applies to a Service reference only "
        "(Traefik ignores it on a TraefikService reference)"
    )


def test_passive_health_check_is_still_refused_by_name() -> None:
    (issue,) = _issues(route("{}").replace("healthCheck: {}", "passiveHealthCheck: {}"))
    assert issue.endswith(
        "passiveHealthCheck: not supported by traefikservice-asgi: passive health checks "
        "are not implemented yet"
    )


def test_failover_without_status_needs_a_health_checked_main() -> None:
    config = load_config_text(
        FAILOVER, backends={"default/app:80": "http://h:1", "default/spare:80": "http://h:2"}
    )
    assert config.routes
    (issue,) = _issues(FAILOVER.replace(", healthCheck: {interval: 50ms}", ""))
    assert "spec.failover.errors: required field is missing" in issue
