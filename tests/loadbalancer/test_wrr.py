"""The weighted round robin picks exactly what Traefik 3.7.15 picked (traefik-observed.md §A)."""

from __future__ import annotations

import random

import pytest
from starlette.types import Message, Receive, Scope, Send

from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin


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
