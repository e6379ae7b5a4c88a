"""The weighted round robin picks exactly what Traefik 3.7.15 picked (traefik-observed.md §A)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import serve, served_by
from traefikservice_asgi.config.models import CookieOptions
from traefikservice_asgi.loadbalancer.sticky import cookie_value
from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin

STICKY = CookieOptions("test")


def sequence(weights: dict[str, int], n: int, seed: int = 0) -> list[str]:
    wrr = WeightedRoundRobin(
        [Child(k, _stub(k), w) for k, w in weights.items()], rng=random.Random(seed)
    )
    return [wrr.next_child() or "-" for _ in range(n)]


def _stub(name: str):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


# Observed on the real binary, 30 requests (traefik-observed.md §A).
OBSERVED_1_2 = (
    "v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2 v2 v1 v2"
)
OBSERVED_3_5_7 = (
    "v3 v2 v3 v1 v2 v3 v3 v2 v1 v3 v2 v3 v3 v2 v1 v3 v2 v3 v1 v2 v3 v3 v2 v1 v3 v2 v3 v3 v2 v1"
)


@pytest.mark.parametrize("seed", range(6))
def test_wrr_1_2_sequence_equals_traefik_for_any_add_order(seed: int) -> None:
    assert " ".join(sequence({"v1": 1, "v2": 2}, 30, seed)) == OBSERVED_1_2


@pytest.mark.parametrize("seed", range(6))
def test_wrr_3_5_7_sequence_equals_traefik_for_any_add_order(seed: int) -> None:
    assert " ".join(sequence({"v1": 3, "v2": 5, "v3": 7}, 30, seed)) == OBSERVED_3_5_7


def test_wrr_3_5_7_keeps_go_float_drift_at_request_44() -> None:
    # Requests 31-45 per the Go-heap model: B and A swap at 44-45, because B's deadline
    # is 3.0000000000000004 after 15 additions of 1/5 (traefik-source-semantics.md §1.3).
    got = sequence({"A": 3, "B": 5, "C": 7}, 45)
    assert " ".join(got[30:]) == "C B C A B C C B A C B C C A B"


def test_wrr_11_3_gives_traefiks_fixed_order() -> None:
    # Observed on Traefik 3.7.15 here (three fresh starts, identical): over 28 requests
    # the light child served requests 4, 9, 13, 18, 23 and 28.
    got = sequence({"heavy": 11, "light": 3}, 28)
    assert [i + 1 for i, name in enumerate(got) if name == "light"] == [4, 9, 13, 18, 23, 28]


def test_wrr_zero_weight_child_is_never_picked() -> None:
    got = sequence({"v1": 1, "v2": 0, "v3": 2}, 12)
    assert " ".join(got) == "v3 v1 v3 v3 v1 v3 v3 v1 v3 v3 v1 v3"


def test_wrr_equal_weights_alternate_from_a_random_first_child() -> None:
    firsts = set()
    for seed in range(20):
        got = sequence({"a": 1, "b": 1}, 6, seed)
        assert got[0::2] == [got[0]] * 3 and got[1::2] == [got[1]] * 3 and got[0] != got[1]
        firsts.add(got[0])
    assert firsts == {"a", "b"}


def test_wrr_unhealthy_child_keeps_its_turn_and_is_skipped() -> None:
    wrr = WeightedRoundRobin([Child(k, _stub(k), w) for k, w in {"v1": 1, "v2": 2}.items()])
    wrr.set_status("v1", False)
    got = [wrr.next_child() for _ in range(6)]
    assert got == ["v2"] * 6
    wrr.set_status("v1", True)
    # The schedule went on underneath: after 6 skips-and-picks v1 is due again.
    assert [wrr.next_child() for _ in range(3)] == ["v2", "v1", "v2"]


def test_wrr_with_every_child_at_zero_weight_answers_503_no_available_server() -> None:
    wrr = WeightedRoundRobin([Child("v1", _stub("v1"), 0)])
    messages = run(wrr, {"type": "http", "headers": []})
    assert messages[0]["status"] == 503
    assert messages[1]["body"] == b"no available server\n"
    assert (b"content-type", b"text/plain; charset=utf-8") in messages[0]["headers"]


def test_wrr_hands_the_request_to_the_picked_child() -> None:
    wrr = WeightedRoundRobin([Child(k, _stub(k), w) for k, w in {"v1": 1, "v2": 2}.items()])
    bodies = [run(wrr, {"type": "http", "headers": []})[1]["body"] for _ in range(3)]
    assert bodies == [b"v2", b"v1", b"v2"]


def run(app, scope: Scope) -> list[Message]:  # type: ignore[no-untyped-def]
    import asyncio

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


# ------------------------------------------------------------------ fenced children
# Traefik's Server.Fenced (a terminating endpoint still serving): skipped by the pick as
# a down child is, reachable through a sticky cookie, UP for the parents.


def fenced_wrr(
    weights: dict[str, int], fenced: set[str], seed: int = 0, **options: object
) -> WeightedRoundRobin:
    children = [Child(k, _stub(k), w) for k, w in weights.items()]
    return WeightedRoundRobin(children, rng=random.Random(seed), fenced=fenced, **options)  # type: ignore[arg-type]


def set_cookies(messages: list[Message]) -> list[bytes]:
    return [v for k, v in messages[0]["headers"] if k == b"set-cookie"]


@pytest.mark.parametrize("seed", range(6))
def test_wrr_never_picks_a_fenced_child_which_keeps_its_turn_as_a_down_child_does(
    seed: int,
) -> None:
    weights = {"v1": 3, "v2": 5, "v3": 7}
    fenced = fenced_wrr(weights, {"v2"}, seed)
    down = fenced_wrr(weights, set(), seed)
    down.set_status("v2", False)
    got = [fenced.next_child() for _ in range(45)]
    assert got == [down.next_child() for _ in range(45)]  # Go skips both in one loop
    assert set(got) == {"v1", "v3"}


def test_wrr_sticky_cookie_still_reaches_a_fenced_child() -> None:
    # Traefik's TestSticky_Fenced: the cookie names the fenced child (a legacy value, the
    # plain name), every other request goes round the unfenced ones.
    wrr = fenced_wrr({"first": 1, "second": 1, "fenced": 1}, {"fenced"}, sticky=STICKY)
    served: list[str] = []
    rewrites: list[list[bytes]] = []
    for _ in range(4):
        pinned = asyncio.run(serve(wrr, "test=fenced"))
        served.append(served_by(pinned))
        rewrites.append(set_cookies(pinned))
        served.append(served_by(asyncio.run(serve(wrr))))
    assert Counter(served) == {"fenced": 4, "first": 2, "second": 2}
    assert rewrites == [[f"test={cookie_value('fenced')}; Path=/".encode()]] * 4
    hashed = asyncio.run(serve(wrr, f"test={cookie_value('fenced')}"))
    assert served_by(hashed) == "fenced" and set_cookies(hashed) == []


def test_wrr_sticky_cookie_of_a_fenced_child_that_is_down_gets_a_new_pick() -> None:
    wrr = fenced_wrr({"a": 1, "b": 1}, {"b"}, sticky=STICKY, health_check=True)
    wrr.set_status("b", False)
    messages = asyncio.run(serve(wrr, f"test={cookie_value('b')}"))
    assert served_by(messages) == "a"
    assert set_cookies(messages) == [f"test={cookie_value('a')}; Path=/".encode()]


def test_wrr_with_every_child_fenced_answers_503_no_available_server() -> None:
    # Traefik's TestBalancerAllServersFenced.
    wrr = fenced_wrr({"test": 1, "test2": 1}, {"test", "test2"})
    messages = run(wrr, {"type": "http", "headers": []})
    assert messages[0]["status"] == 503
    assert messages[1]["body"] == b"no available server\n"


def test_wrr_fenced_child_back_up_after_a_down_is_still_fenced() -> None:
    wrr = fenced_wrr({"a": 1, "b": 1}, {"b"}, health_check=True)
    wrr.set_status("b", False)
    wrr.set_status("b", True)
    wrr.set_status("a", False)
    wrr.set_status("a", True)
    assert {wrr.next_child() for _ in range(6)} == {"a"}


def test_wrr_fenced_child_counts_up_for_the_parent_while_no_pick_is_left() -> None:
    # Go keeps a fenced child in its status map: the balancer stays UP for its parents.
    # With only fenced children UP, Go's pick loop never ends; here it answers 503.
    wrr = fenced_wrr({"a": 1, "b": 1}, {"b"}, health_check=True)
    heard: list[bool] = []
    wrr.register_status_updater(heard.append)
    wrr.set_status("a", False)
    assert heard == []
    assert wrr.next_child() is None
    assert run(wrr, {"type": "http", "headers": []})[0]["status"] == 503
    wrr.set_status("b", False)
    assert heard == [False]
    wrr.set_status("a", True)
    assert heard == [False, True]
    assert wrr.next_child() == "a"


def test_wrr_fence_names_that_are_no_child_change_nothing() -> None:
    wrr = fenced_wrr({"v1": 1, "v2": 2}, {"gone"})
    assert " ".join(wrr.next_child() or "-" for _ in range(30)) == OBSERVED_1_2


def test_the_pick_in_place_leaves_the_heap_as_gos_pop_then_push() -> None:
    from traefikservice_asgi.loadbalancer import _goheap

    class E:
        def __init__(self, deadline: float) -> None:
            self.deadline = deadline

    rng = random.Random(7)
    for size in range(1, 9):
        deadlines = [float(rng.randint(0, 4)) for _ in range(size)]  # ties on purpose
        a, b = [E(d) for d in deadlines], [E(d) for d in deadlines]
        for _ in range(50):
            step = float(rng.randint(0, 3))
            popped = _goheap.pop(a)
            popped.deadline += step
            _goheap.push(a, popped)
            in_place = _goheap.pop_in_place(b)
            in_place.deadline += step
            _goheap.push_in_place(b)
            assert [e.deadline for e in a] == [e.deadline for e in b]
            assert a.index(popped) == b.index(in_place)
