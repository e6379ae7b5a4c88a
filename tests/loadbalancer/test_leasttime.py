"""Least time picks as Traefik 3.7's ``leasttime`` balancer does.

Ports the cases of ``pkg/server/service/loadbalancer/leasttime/leasttime_test.go`` on an
injected clock: score = average TTFB (whole milliseconds, truncated) * (1 + in flight)
/ weight, lowest wins; ties go by Go's ``selectWRR`` deadlines, staggered at the start;
100 samples kept; unhealthy and fenced servers skipped; sticky cookies pin a server
without timing it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import serve, served_by
from traefikservice_asgi.config.models import CookieOptions
from traefikservice_asgi.exceptions import HealthCheckNotEnabled
from traefikservice_asgi.loadbalancer.leasttime import SAMPLE_SIZE, LeastTime
from traefikservice_asgi.loadbalancer.sticky import cookie_value
from traefikservice_asgi.loadbalancer.wrr import Child
from traefikservice_asgi.responses import send_proxy_error

MS = 1_000_000  # nanoseconds


class Clock:
    """A monotonic clock in nanoseconds that only the stubs move."""

    def __init__(self) -> None:
        self.now = 10**12

    def __call__(self) -> int:
        return self.now


class InOrder(random.Random):
    """Keeps the add order as given (Traefik shuffles it)."""

    def shuffle(self, x: list[object]) -> None:  # type: ignore[override]
        return None


class Stub:
    """A server whose response starts ``ttfb_ns`` after it is called (on ``clock``);
    with ``hold`` set, it stays in flight after its response started."""

    def __init__(self, name: str, clock: Clock, ttfb_ms: float = 0) -> None:
        self.name = name
        self.clock = clock
        self.ttfb_ns = int(ttfb_ms * MS)
        self.hold: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.clock.now += self.ttfb_ns
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.body", "body": self.name.encode()})


def balancer(
    ttfb_ms: Mapping[str, float], weights: Mapping[str, int] | None = None, **options: object
) -> tuple[LeastTime, dict[str, Stub]]:
    clock = Clock()
    stubs = {name: Stub(name, clock, ms) for name, ms in ttfb_ms.items()}
    children = [Child(n, s, (weights or {}).get(n, 1)) for n, s in stubs.items()]
    lb = LeastTime(children, rng=InOrder(), clock=clock, **options)  # type: ignore[arg-type]
    return lb, stubs


def serve_all(app: LeastTime, n: int) -> list[str]:
    async def run() -> list[str]:
        return [served_by(await serve(app)) for _ in range(n)]

    return asyncio.run(run())


def set_cookies(messages: list[Message]) -> list[bytes]:
    return [v for k, v in messages[0]["headers"] if k == b"set-cookie"]


# ----------------------------------------------------------------- ties: EDF schedule


def test_leasttime_equal_servers_tie_and_follow_the_staggered_deadlines() -> None:
    # Deadlines start at 1 and 2: a (1->2), a (tie at 2: the first wins), b, a, b...
    lb, _ = balancer({"a": 0, "b": 0})
    assert serve_all(lb, 8) == ["a", "a", "b", "a", "b", "a", "b", "a"]


def test_leasttime_ties_between_weights_2_and_1_follow_go_select_wrr() -> None:
    # a starts at 1/2, b at 1/2 + 1: a a a b a a b a a b
    lb, _ = balancer({"a": 0, "b": 0}, {"a": 2, "b": 1})
    assert [lb.next_child() for _ in range(10)] == list("aaabaabaab")


def test_leasttime_three_equal_servers() -> None:
    # Deadlines 1, 2, 3 -> a(2) a(3) b(3) a(4) b(4) c(4) a(5) b(5) c(5)
    lb, _ = balancer({"a": 0, "b": 0, "c": 0})
    assert [lb.next_child() for _ in range(9)] == list("aababcabc")


def test_leasttime_a_server_with_weight_zero_is_never_added() -> None:
    lb, _ = balancer({"a": 0, "b": 0, "c": 0}, {"b": 0})
    assert set(lb.next_child() for _ in range(20)) == {"a", "c"}


# --------------------------------------------------------------------- TTFB scores


def test_leasttime_after_one_slow_answer_every_request_goes_to_the_fast_server() -> None:
    lb, _ = balancer({"slow": 60, "fast": 0})
    assert serve_all(lb, 6) == ["slow", "fast", "fast", "fast", "fast", "fast"]
    assert lb.average_response_time("slow") == 60.0
    assert lb.average_response_time("fast") == 0.0


def test_leasttime_ttfb_is_counted_in_whole_milliseconds_truncated() -> None:
    lb, stubs = balancer({"a": 1.999})
    serve_all(lb, 1)
    assert lb.average_response_time("a") == 1.0
    stubs["a"].ttfb_ns = int(0.999 * MS)
    serve_all(lb, 1)
    assert lb.average_response_time("a") == 0.5  # (1 + 0) / 2


def test_leasttime_keeps_the_last_100_samples() -> None:
    lb, stubs = balancer({"a": 10})
    serve_all(lb, SAMPLE_SIZE)
    assert lb.average_response_time("a") == 10.0
    stubs["a"].ttfb_ns = 110 * MS
    serve_all(lb, 1)  # replaces the oldest 10
    assert lb.average_response_time("a") == 11.0
    serve_all(lb, SAMPLE_SIZE - 1)
    assert lb.average_response_time("a") == 110.0


def test_leasttime_score_divides_by_the_weight() -> None:
    # a: 30 ms / 3 = 10 beats b: 20 ms / 1 = 20 (after one cold pick each)
    lb, _ = balancer({"a": 30, "b": 20}, {"a": 3, "b": 1})
    assert serve_all(lb, 5) == ["a", "b", "a", "a", "a"]


def test_leasttime_requests_in_flight_multiply_the_score() -> None:
    async def scenario() -> list[str]:
        lb, stubs = balancer({"a": 10, "b": 15})
        picks = [served_by(await serve(lb)) for _ in range(3)]  # a (cold tie), b, a
        stubs["a"].hold = asyncio.Event()
        held = asyncio.create_task(serve(lb))  # a: 10 < 15, then stays in flight
        await asyncio.sleep(0)
        picks.append(served_by(await serve(lb)))  # a: 10 * 2 = 20 > b: 15
        stubs["a"].hold.set()
        picks.insert(3, served_by(await held))
        picks.append(served_by(await serve(lb)))  # a is idle again: 10 < 15
        return picks

    assert asyncio.run(scenario()) == ["a", "b", "a", "a", "b", "a"]


def test_leasttime_ties_at_a_nonzero_score_use_the_deadlines_too() -> None:
    lb, _ = balancer({"a": 5, "b": 5, "c": 9})
    # a (three cold: deadline 1), b (b and c cold: deadline 2 < 3), c (the only 0), then
    # a and b tie at 5 and go by their deadlines (a=2, b=3): a, a, b, a
    assert serve_all(lb, 7) == ["a", "b", "c", "a", "a", "b", "a"]


def test_leasttime_times_a_websocket_until_its_accept() -> None:
    clock = Clock()

    async def ws_server(scope: Scope, receive: Receive, send: Send) -> None:
        clock.now += 7 * MS
        await send({"type": "websocket.accept"})
        clock.now += 100 * MS  # the conversation is not the first byte
        await send({"type": "websocket.close", "code": 1000})

    lb = LeastTime([Child("ws", ws_server)], clock=clock)

    async def run() -> None:
        async def send(message: Message) -> None:
            return None

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        await lb({"type": "websocket", "path": "/", "headers": []}, receive, send)

    asyncio.run(run())
    assert lb.average_response_time("ws") == 7.0


def test_leasttime_takes_no_sample_from_an_error_the_gateway_wrote_itself() -> None:
    """A 502/504 the proxy writes when the server never answered is no first byte of the
    server's (Go's GotFirstResponseByte never fires): only real answers are timed."""
    clock = Clock()

    async def dead_server(scope: Scope, receive: Receive, send: Send) -> None:
        clock.now += 30 * MS  # the dial or the wait for headers that failed
        await send_proxy_error(send, 502)

    lb = LeastTime([Child("dead", dead_server)], clock=clock)

    async def run() -> list[Message]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        await lb({"type": "http", "path": "/", "headers": []}, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 502
    assert lb.average_response_time("dead") == 0.0


# -------------------------------------------------------------------------- health


def test_leasttime_skips_unhealthy_and_fenced_servers() -> None:
    lb, _ = balancer({"a": 0, "b": 0, "c": 0}, health_check=True, fenced={"c"})
    lb.set_status("a", False)
    assert [lb.next_child() for _ in range(3)] == ["b", "b", "b"]
    lb.set_status("a", True)
    assert [lb.next_child() for _ in range(3)] == ["a", "a", "b"]  # deadlines a=1, b=2


def test_leasttime_without_a_healthy_server_answers_503_no_available_server() -> None:
    lb, _ = balancer({"a": 0}, health_check=True)
    lb.set_status("a", False)
    messages = asyncio.run(serve(lb))
    assert messages[0]["status"] == 503
    assert messages[0]["headers"][:2] == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"x-content-type-options", b"nosniff"),
    ]
    assert messages[1]["body"] == b"no available server\n"


def test_leasttime_reports_to_parents_only_when_the_balancer_flips() -> None:
    lb, _ = balancer({"a": 0, "b": 0}, health_check=True)
    heard: list[bool] = []
    lb.register_status_updater(heard.append)
    for name, up in (("a", False), ("b", False), ("a", True), ("b", True)):
        lb.set_status(name, up)
    assert heard == [False, True]


def test_leasttime_without_health_check_refuses_status_updaters_as_traefik() -> None:
    lb, _ = balancer({"a": 0})
    with pytest.raises(HealthCheckNotEnabled, match="for this LeastTime service"):
        lb.register_status_updater(lambda up: None)


# -------------------------------------------------------------------------- sticky

STICKY = CookieOptions("pin")


def test_leasttime_sticky_sets_a_cookie_for_the_picked_server() -> None:
    lb, _ = balancer({"a": 0, "b": 0}, sticky=STICKY)
    messages = asyncio.run(serve(lb))
    assert served_by(messages) == "a"
    assert set_cookies(messages) == [f"pin={cookie_value('a')}; Path=/".encode()]


def test_leasttime_pinned_requests_are_neither_timed_nor_counted_in_flight() -> None:
    async def scenario() -> tuple[list[str], float, list[Message]]:
        lb, stubs = balancer({"a": 20, "b": 10}, sticky=STICKY)
        picks = [served_by(await serve(lb)) for _ in range(2)]  # a (cold tie), b (0 < 20)
        stubs["b"].ttfb_ns = 40 * MS
        stubs["b"].hold = release = asyncio.Event()
        pinned = asyncio.create_task(serve(lb, f"pin={cookie_value('b')}"))
        await asyncio.sleep(0)  # b's pinned response has started and is held
        stubs["b"].hold = None
        b_average = lb.average_response_time("b")
        # Timed, b would score (10 + 40) / 2 = 25; counted in flight, 10 * 2 = 20 (a tie
        # a wins on its deadline): either way a would serve. As in Go, b does.
        picks.append(served_by(await serve(lb)))
        release.set()
        return picks, b_average, await pinned

    picks, b_average, pinned = asyncio.run(scenario())
    assert picks == ["a", "b", "b"]
    assert b_average == 10.0
    assert served_by(pinned) == "b" and set_cookies(pinned) == []


def test_leasttime_sticky_legacy_value_pins_and_is_rewritten() -> None:
    lb, _ = balancer({"a": 0, "b": 0}, sticky=STICKY)
    messages = asyncio.run(serve(lb, "pin=b"))
    assert served_by(messages) == "b"
    assert set_cookies(messages) == [f"pin={cookie_value('b')}; Path=/".encode()]


def test_leasttime_sticky_cookie_of_an_unhealthy_server_gets_a_new_pick() -> None:
    lb, _ = balancer({"a": 0, "b": 0}, sticky=STICKY, health_check=True)
    lb.set_status("b", False)
    messages = asyncio.run(serve(lb, f"pin={cookie_value('b')}"))
    assert served_by(messages) == "a"
    assert set_cookies(messages) == [f"pin={cookie_value('a')}; Path=/".encode()]
