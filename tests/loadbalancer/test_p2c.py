"""The power of two random choices picks as Traefik 3.7's ``p2c`` balancer does.

Ports the cases of ``pkg/server/service/loadbalancer/p2c/p2c_test.go``: two indexes
drawn from the RNG (a scripted one here), the second shifted when both are equal, the
second server winning only with strictly fewer requests in flight; unhealthy and fenced
servers are never candidates; sticky cookies pin a healthy server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import serve, served_by
from traefikservice_asgi.config.models import CookieOptions
from traefikservice_asgi.exceptions import HealthCheckNotEnabled
from traefikservice_asgi.loadbalancer.p2c import PowerOfTwoChoices
from traefikservice_asgi.loadbalancer.sticky import cookie_value
from traefikservice_asgi.loadbalancer.wrr import Child


class ScriptedRandom(random.Random):
    """Go's ``rand.Intn`` answers in a fixed order; the add order is left as given."""

    def __init__(self, draws: Iterable[int] = ()) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def shuffle(self, x: list[object]) -> None:  # type: ignore[override]
        return None

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if not self.draws:
            raise AssertionError("the balancer drew more random numbers than scripted")
        value = self.draws.pop(0)
        assert stop is None and 0 <= value < start, (value, start)
        return value


class Stub:
    """A server answering 200 with its name; with ``hold`` set, it keeps the request in
    flight (after its response started) until ``hold`` is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hold: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.body", "body": self.name.encode()})


def balancer(
    names: Iterable[str], draws: Iterable[int] = (), **options: object
) -> tuple[PowerOfTwoChoices, dict[str, Stub]]:
    stubs = {name: Stub(name) for name in names}
    children = [Child(name, stub) for name, stub in stubs.items()]
    lb = PowerOfTwoChoices(children, rng=ScriptedRandom(draws), **options)  # type: ignore[arg-type]
    return lb, stubs


def set_cookies(messages: list[Message]) -> list[bytes]:
    return [v for k, v in messages[0]["headers"] if k == b"set-cookie"]


def test_p2c_draws_two_indexes_and_shifts_the_second_when_both_are_equal() -> None:
    # idle servers tie, and a tie keeps the first draw: n1 decides
    lb, _ = balancer("abc", draws=[0, 0, 2, 2, 1, 0, 2, 1])
    assert [lb.next_child() for _ in range(4)] == ["a", "c", "b", "c"]
    assert lb.inflight("a") == 0


def test_p2c_sends_to_the_server_with_strictly_fewer_requests_in_flight() -> None:
    async def scenario() -> list[str]:
        lb, stubs = balancer("ab", draws=[0, 1, 1, 0, 0, 1, 1, 0, 0, 0])
        stubs["a"].hold = asyncio.Event()
        first = asyncio.create_task(serve(lb))  # a, held in flight
        await asyncio.sleep(0)
        assert lb.inflight("a") == 1
        picks = [served_by(await serve(lb)) for _ in range(4)]  # each draw order
        stubs["a"].hold.set()
        picks.insert(0, served_by(await first))
        assert lb.inflight("a") == 0
        return picks

    assert asyncio.run(scenario()) == ["a", "b", "b", "b", "b"]


def test_p2c_is_not_a_least_connections_balancer_with_three_servers() -> None:
    # Only the two drawn servers are compared: a busy pair still serves one of its own.
    async def scenario() -> list[str | None]:
        lb, stubs = balancer("abc", draws=[0, 0, 0, 1, 1, 0])
        stubs["a"].hold = asyncio.Event()
        stubs["b"].hold = asyncio.Event()
        # a (draws 0,0: a vs b, a tie), then b (draws 0,1: b has fewer in flight)
        held = [asyncio.create_task(serve(lb)) for _ in range(2)]
        await asyncio.sleep(0)
        assert (lb.inflight("a"), lb.inflight("b"), lb.inflight("c")) == (1, 1, 0)
        pick = lb.next_child()  # draws 1,0: b vs a, equal: the first wins
        stubs["a"].hold.set()
        stubs["b"].hold.set()
        return [served_by(await task) for task in held] + [pick]

    assert asyncio.run(scenario()) == ["a", "b", "b"]  # idle c was not drawn


def test_p2c_skips_unhealthy_servers_and_draws_among_the_healthy_ones() -> None:
    lb, _ = balancer("abc", draws=[0, 0, 1, 0, 1, 1], health_check=True)
    lb.set_status("a", False)
    assert [lb.next_child(), lb.next_child()] == ["b", "c"]  # healthy == [b, c]
    lb.set_status("b", False)
    assert lb.next_child() == "c"  # one healthy server: no draw at all
    lb.set_status("a", True)
    assert lb.next_child() == "c"  # healthy == [a, c]: draws 1, 1 -> c vs a, a tie


def test_p2c_never_picks_a_fenced_server() -> None:
    lb, _ = balancer("abc", draws=[0, 0, 1, 1], fenced={"b"})
    assert [lb.next_child(), lb.next_child()] == ["a", "c"]  # candidates == [a, c]


def test_p2c_with_one_candidate_draws_nothing() -> None:
    lb, _ = balancer("ab", draws=[], fenced={"a"})
    assert [lb.next_child() for _ in range(3)] == ["b", "b", "b"]


def test_p2c_without_a_healthy_server_answers_503_no_available_server() -> None:
    lb, _ = balancer("ab", health_check=True)
    lb.set_status("a", False)
    lb.set_status("b", False)
    messages = asyncio.run(serve(lb))
    assert messages == [
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", b"20"),
            ],
        },
        {"type": "http.response.body", "body": b"no available server\n"},
    ]


def test_p2c_reports_to_parents_only_when_the_last_server_goes_down_or_one_comes_back() -> None:
    lb, _ = balancer("ab", health_check=True)
    heard: list[bool] = []
    lb.register_status_updater(heard.append)
    lb.set_status("a", False)
    lb.set_status("b", False)
    lb.set_status("b", True)
    lb.set_status("a", True)
    assert heard == [False, True]


def test_p2c_without_health_check_refuses_status_updaters_as_traefik() -> None:
    lb, _ = balancer("ab")
    with pytest.raises(HealthCheckNotEnabled, match="not enabled in config for this P2C service"):
        lb.register_status_updater(lambda up: None)


STICKY = CookieOptions("pin", http_only=True)


def test_p2c_sticky_sets_a_cookie_for_the_picked_server_before_its_headers() -> None:
    lb, _ = balancer("ab", draws=[1, 0], sticky=STICKY)
    messages = asyncio.run(serve(lb))
    assert served_by(messages) == "b"
    assert set_cookies(messages) == [f"pin={cookie_value('b')}; Path=/; HttpOnly".encode()]


def test_p2c_sticky_cookie_pins_a_healthy_server_without_drawing() -> None:
    lb, _ = balancer("ab", draws=[], sticky=STICKY, fenced={"a"})
    messages = asyncio.run(serve(lb, f"pin={cookie_value('a')}"))
    assert served_by(messages) == "a"  # fenced, yet still pinned, as in Go
    assert set_cookies(messages) == []


def test_p2c_sticky_legacy_value_pins_and_is_rewritten() -> None:
    lb, _ = balancer("ab", draws=[], sticky=STICKY)
    messages = asyncio.run(serve(lb, "pin=b"))  # the plain name: a pre-3.3.4 value
    assert served_by(messages) == "b"
    assert set_cookies(messages) == [f"pin={cookie_value('b')}; Path=/; HttpOnly".encode()]


def test_p2c_sticky_cookie_of_an_unhealthy_server_gets_a_new_pick() -> None:
    lb, _ = balancer("ab", draws=[], sticky=STICKY, health_check=True)
    lb.set_status("b", False)
    messages = asyncio.run(serve(lb, f"pin={cookie_value('b')}"))
    assert served_by(messages) == "a"
    assert set_cookies(messages) == [f"pin={cookie_value('a')}; Path=/; HttpOnly".encode()]


def test_p2c_counts_a_pinned_request_in_flight() -> None:
    async def scenario() -> str:
        lb, stubs = balancer("ab", draws=[0, 1], sticky=STICKY)
        stubs["a"].hold = asyncio.Event()
        pinned = asyncio.create_task(serve(lb, f"pin={cookie_value('a')}"))
        await asyncio.sleep(0)
        assert lb.inflight("a") == 1
        pick = served_by(await serve(lb))  # a vs b: b has fewer in flight
        stubs["a"].hold.set()
        await pinned
        return pick

    assert asyncio.run(scenario()) == "b"


def test_p2c_spreads_over_every_server_with_a_real_rng() -> None:
    children = [Child(name, Stub(name)) for name in "abc"]
    lb = PowerOfTwoChoices(children, rng=random.Random(7))
    picks = [lb.next_child() for _ in range(300)]
    counts = sorted(picks.count(name) for name in "abc")
    assert sum(counts) == 300 and counts[0] > 60  # idle servers: the first draw decides
