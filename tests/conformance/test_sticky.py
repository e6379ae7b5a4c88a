"""Sticky cookies behave exactly as in Traefik 3.7.15 (scenarios/sticky.yaml).

Cookie values are ``sha256(child)[:16]``; a legacy value (the plain child name, its FNV-1
hash, or for a servers load balancer the plain server URL) pins the same child and is
rewritten with a fresh ``Set-Cookie``; anything else is ignored (normal pick + cookie).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from pathlib import Path

import pytest

from tests.conformance.runner import (
    BackendSpec,
    BothRuns,
    Request,
    assert_same_responses,
    repeat,
    requires_traefik,
    run_both,
)
from tests.conformance.translate import gateway_cookie_name
from tests.support.traefik import free_port_on

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "sticky.yaml"
SCENARIO_PORT = "28380"  # the EndpointSlice's port as written in the scenario


PODS_PORT = free_port_on("127.0.0.2", "127.0.0.3")
POD_A, POD_B = f"http://127.0.0.2:{PODS_PORT}", f"http://127.0.0.3:{PODS_PORT}"
BACKENDS: dict[str, str | BackendSpec] = {
    **{f"default/app-v{i}:80": f"app-v{i}" for i in (1, 2, 3)},
    # Not referenced by the manifests: the EndpointSlice's two addresses.
    "endpoint/a": BackendSpec("pod-a", host="127.0.0.2", port=PODS_PORT),
    "endpoint/b": BackendSpec("pod-b", host="127.0.0.3", port=PODS_PORT),
}

BACKENDS_NAMES = ("app-v1", "app-v2", "app-v3", "pod-a", "pod-b")


def value(name: str) -> str:
    """A v3 sticky cookie value: ``hex(sha256(name))[:16]``."""
    return hashlib.sha256(name.encode()).hexdigest()[:16]


V1, V2 = "default-app-v1-80", "default-app-v2-80"
DEFAULT_NAME = gateway_cookie_name("default-sticky-default")

ATTRIBUTES = range(0, 9)
DEFAULT = range(9, 15)
LEGACY_PLAIN = range(15, 18)
LEGACY_FNV = range(18, 21)
CURRENT = range(21, 24)
GARBAGE = range(24, 27)
WRONG_NAME = range(27, 30)
NESTED_FRESH = range(30, 39)
NESTED_PINNED = range(39, 42)
NESTED_OUTER_ONLY = range(42, 45)
PODS_FRESH = range(45, 51)
PODS_PINNED = range(51, 54)
PODS_LEGACY = range(54, 56)
SCRIPT: list[Request] = [
    *repeat(3, "lax.test"),
    *repeat(3, "none.test"),
    *repeat(3, "strict.test"),
    *repeat(3, "default-name.test"),
    *repeat(3, "default-name.test", cookies={DEFAULT_NAME: value(V1)}),
    *repeat(3, "sticky.test", cookies={"cookie": V1}),
    *repeat(3, "sticky.test", cookies={"cookie": "fd16eacf5992ad55"}),  # FNV-1 64 of V1
    *repeat(3, "sticky.test", cookies={"cookie": value(V1)}),
    *repeat(3, "sticky.test", cookies={"cookie": "garbage-value"}),
    *repeat(3, "sticky.test", cookies={"other": V1}),
    *repeat(9, "nested.test"),
    *repeat(3, "nested.test", cookies={"outer": value("default-sticky-inner"), "inner": value(V1)}),
    *repeat(3, "nested.test", cookies={"outer": value("default-sticky-inner")}),
    *repeat(6, "pods.test"),
    *repeat(3, "pods.test", cookies={"pod": value(POD_B)}),
    *repeat(2, "pods.test", cookies={"pod": POD_A}),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    folder = tmp_path_factory.mktemp("sticky")
    scenario = folder / SCENARIO.name
    scenario.write_text(SCENARIO.read_text().replace(SCENARIO_PORT, str(PODS_PORT)))
    return run_both([scenario], SCRIPT, BACKENDS, tmp_path=folder)


def test_every_cookie_attribute_is_written_in_gos_order(runs: BothRuns) -> None:
    lax, none, strict = (runs.traefik.observations[i].set_cookies for i in (0, 3, 6))
    assert lax == (
        f"lax={value(V2)}; Path=/app; Domain=example.test; Max-Age=3600; HttpOnly; Secure; "
        "SameSite=Lax",
    )
    assert none == (f"none={value(V2)}; Path=/; Max-Age=0; Secure; SameSite=None",)
    assert strict == (f"my_strict_cookie={value(V2)}; Path=/; SameSite=Strict",)
    assert_same_responses(runs.traefik, runs.gateway, ATTRIBUTES)


def test_default_cookie_name_is_hashed_from_the_service_and_pins(runs: BothRuns) -> None:
    pinned = runs.traefik.observations[DEFAULT.start + 3 : DEFAULT.stop]
    assert {(o.backend, o.set_cookies) for o in pinned} == {("app-v1", ())}
    assert_same_responses(runs.traefik, runs.gateway, DEFAULT)


@pytest.mark.parametrize("indexes", [LEGACY_PLAIN, LEGACY_FNV], ids=["plain-name", "fnv1-64"])
def test_a_legacy_value_pins_its_child_and_is_rewritten_every_time(
    runs: BothRuns, indexes: range
) -> None:
    theirs = runs.traefik.observations[indexes.start : indexes.stop]
    assert {(o.backend, o.set_cookies) for o in theirs} == {
        ("app-v1", (f"cookie={value(V1)}; Path=/",))
    }
    assert_same_responses(runs.traefik, runs.gateway, indexes)


def test_a_current_value_pins_without_set_cookie(runs: BothRuns) -> None:
    theirs = runs.traefik.observations[CURRENT.start : CURRENT.stop]
    assert {(o.backend, o.set_cookies) for o in theirs} == {("app-v1", ())}
    assert_same_responses(runs.traefik, runs.gateway, CURRENT)


@pytest.mark.parametrize("indexes", [GARBAGE, WRONG_NAME], ids=["garbage-value", "wrong-name"])
def test_an_unknown_cookie_is_ignored_and_the_schedule_goes_on(
    runs: BothRuns, indexes: range
) -> None:
    assert all(len(o.set_cookies) == 1 for o in runs.traefik.observations[indexes.start :][:3])
    assert_same_responses(runs.traefik, runs.gateway, indexes)


def test_nested_sticky_levels_each_set_and_honour_their_own_cookie(runs: BothRuns) -> None:
    fresh = runs.traefik.observations[NESTED_FRESH.start : NESTED_FRESH.stop]
    # Through the inner service: outer's cookie first, then inner's; app-v3: outer's only.
    assert {len(o.set_cookies) for o in fresh if o.backend == "app-v3"} == {1}
    assert {o.set_cookies[0].split("=")[0] for o in fresh} == {"outer"}
    assert {len(o.set_cookies) for o in fresh if o.backend != "app-v3"} == {2}
    pinned = runs.traefik.observations[NESTED_PINNED.start : NESTED_PINNED.stop]
    assert {(o.backend, o.set_cookies) for o in pinned} == {("app-v1", ())}
    for indexes in (NESTED_FRESH, NESTED_PINNED, NESTED_OUTER_ONLY):
        assert_same_responses(runs.traefik, runs.gateway, indexes)


def test_sticky_service_reference_balances_its_endpoints_and_pins_by_server_url(
    runs: BothRuns,
) -> None:
    cookie_of = {"pod-a": value(POD_A), "pod-b": value(POD_B)}
    for run in (runs.traefik, runs.gateway):
        fresh = run.observations[PODS_FRESH.start : PODS_FRESH.stop]
        backends = [o.backend for o in fresh]
        # Two servers, weight 1 each, shuffled: strict alternation from a random start.
        assert Counter(backends) == {"pod-a": 3, "pod-b": 3}, run.target
        assert all(a != b for a, b in itertools.pairwise(backends)), run.target
        for o in fresh:
            assert o.set_cookies == (f"pod={cookie_of[o.backend or '']}; Path=/; HttpOnly",)
    assert_same_responses(runs.traefik, runs.gateway, [*PODS_PINNED, *PODS_LEGACY])
    assert {runs.traefik.observations[i].backend for i in PODS_PINNED} == {"pod-b"}
    assert {runs.traefik.observations[i].set_cookies for i in PODS_LEGACY} == {
        (f"pod={value(POD_A)}; Path=/; HttpOnly",)
    }


def test_every_backend_receives_the_same_requests_except_the_random_pod_start(
    runs: BothRuns,
) -> None:
    deterministic = set(range(len(SCRIPT))) - set(PODS_FRESH)
    for name in sorted(BACKENDS_NAMES):
        theirs = [i for i in runs.traefik.indexes(name) if i in deterministic]
        ours = [i for i in runs.gateway.indexes(name) if i in deterministic]
        assert theirs == ours, name
