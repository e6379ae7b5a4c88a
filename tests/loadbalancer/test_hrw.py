"""Highest random weight picks the child Traefik 3.7 picks for each client IP.

Ports ``pkg/server/service/loadbalancer/hrw/hrw_test.go``; the IP -> child table was
observed on the real Traefik 3.7.15 (file provider, clients bound to 127.0.0.2-25).
"""

from __future__ import annotations

import math
import random

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import run, scope
from traefikservice_asgi.loadbalancer.hrw import (
    HighestRandomWeight,
    client_ip,
    fnv1a_64,
    go_log,
)
from traefikservice_asgi.loadbalancer.wrr import Child


def _stub(name: str, status: int = 200):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"server", name.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def _balancer(weights: dict[str, int], seed: int = 0, **options: object) -> HighestRandomWeight:
    children = [Child(name, _stub(name), weight) for name, weight in weights.items()]
    return HighestRandomWeight(children, rng=random.Random(seed), **options)  # type: ignore[arg-type]


def _serve(app: HighestRandomWeight, ip: str | None) -> list[Message]:
    return run(app, scope(client=None if ip is None else (ip, 40000)))


def _served_by(app: HighestRandomWeight, ip: str) -> str:
    start = _serve(app, ip)[0]
    return dict(start["headers"])[b"server"].decode() if start["status"] == 200 else "-"


def _random_ips(n: int, seed: int = 12345) -> list[str]:
    rng = random.Random(seed)
    return [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(n)]


# ------------------------------------------------------------------- the hash itself


@pytest.mark.parametrize(
    ("data", "expected"),
    # Go's hash/fnv golden64a vectors.
    [
        (b"", 0xCBF29CE484222325),
        (b"a", 0xAF63DC4C8601EC8C),
        (b"ab", 0x089C4407B545986A),
        (b"abc", 0xE71FA2190541574B),
    ],
)
def test_fnv1a_64_matches_gos_vectors(data: bytes, expected: int) -> None:
    assert fnv1a_64(data) == expected


def test_fnv1a_64_continues_a_running_hash_like_hashing_the_concatenation() -> None:
    assert fnv1a_64(b"default-app-v1-80", fnv1a_64(b"10.0.0.1")) == fnv1a_64(
        b"10.0.0.1default-app-v1-80"
    )


def test_go_log_special_cases_are_gos() -> None:
    assert go_log(0.0) == -math.inf
    assert go_log(1.0) == 0.0 and math.copysign(1, go_log(1.0)) == 1.0
    assert math.isnan(go_log(-1.0))
    assert go_log(math.inf) == math.inf


def test_go_log_is_within_one_ulp_of_the_c_library_and_not_always_equal() -> None:
    rng = random.Random(7)
    values = [rng.random() for _ in range(20000)]
    assert all(abs(go_log(x) - math.log(x)) <= math.ulp(math.log(x)) for x in values)
    # Why it is ported at all: the C library rounds some results differently.
    assert any(go_log(x) != math.log(x) for x in values)


# ------------------------------------------------------------------ Traefik's picks

# Observed on Traefik 3.7.15: children default-app-v1-80, -v2-80, -v3-80, weight 1 each.
OBSERVED = {
    "127.0.0.2": "v3", "127.0.0.3": "v2", "127.0.0.4": "v2", "127.0.0.5": "v3",
    "127.0.0.6": "v1", "127.0.0.7": "v3", "127.0.0.8": "v2", "127.0.0.9": "v3",
    "127.0.0.10": "v2", "127.0.0.11": "v2", "127.0.0.12": "v2", "127.0.0.13": "v2",
    "127.0.0.14": "v2", "127.0.0.15": "v3", "127.0.0.16": "v3", "127.0.0.17": "v3",
    "127.0.0.18": "v1", "127.0.0.19": "v2", "127.0.0.20": "v2", "127.0.0.21": "v2",
    "127.0.0.22": "v3", "127.0.0.23": "v2", "127.0.0.24": "v2", "127.0.0.25": "v3",
}  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_hrw_picks_the_child_traefik_picked_for_each_ip_in_any_add_order(seed: int) -> None:
    hrw = _balancer({f"default-app-{v}-80": 1 for v in ("v1", "v2", "v3")}, seed)
    got = {ip: (hrw.pick(ip) or "-").split("-")[2] for ip in OBSERVED}
    assert got == OBSERVED


def test_hrw_weights_4_1_split_clients_about_80_20() -> None:
    hrw = _balancer({"first": 4, "second": 1})
    counts = {"first": 0, "second": 0}
    for ip in _random_ips(100):
        counts[_served_by(hrw, ip)] += 1
    assert abs(counts["first"] - 80) <= 10 and abs(counts["second"] - 20) <= 10


def test_hrw_same_client_always_reaches_the_same_child() -> None:
    hrw = _balancer({"first": 1, "second": 2})
    for ip in _random_ips(20, seed=3):
        assert len({_served_by(hrw, ip) for _ in range(10)}) == 1


def test_hrw_removing_a_child_moves_only_the_clients_it_had() -> None:
    before = _balancer({"a": 1, "b": 1, "c": 1})
    after = _balancer({"a": 1, "b": 1})
    moved = [ip for ip in _random_ips(200) if before.pick(ip) != after.pick(ip)]
    assert moved and all(before.pick(ip) == "c" for ip in moved)


# ------------------------------------------------------------ the IP it hashes


def test_hrw_hashes_an_ipv4_mapped_address_as_go_prints_it() -> None:
    scope = {"type": "http", "client": ("::ffff:127.0.0.6", 1234)}
    assert client_ip(scope) == "127.0.0.6"
    assert client_ip({"type": "http", "client": ("::1", 1234)}) == "::1"
    hrw = _balancer({f"default-app-{v}-80": 1 for v in ("v1", "v2", "v3")})
    assert _served_by(hrw, "::ffff:127.0.0.6") == "default-app-v1-80"


def test_hrw_without_a_client_address_hashes_the_empty_string() -> None:
    hrw = _balancer({"a": 1, "b": 1, "c": 1})
    assert client_ip({"type": "http", "client": None}) == ""
    start = _serve(hrw, None)[0]
    assert dict(start["headers"])[b"server"].decode() == hrw.pick("")


# ------------------------------------------------------------ weights and health

NO_SERVER = [
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


def test_hrw_without_children_answers_503_no_available_server() -> None:
    assert _serve(_balancer({}), "10.0.0.1") == NO_SERVER


def test_hrw_all_zero_weight_children_answer_503() -> None:
    assert _serve(_balancer({"test": 0, "test2": 0}), "10.0.0.1") == NO_SERVER


def test_hrw_zero_weight_child_is_never_picked() -> None:
    hrw = _balancer({"first": 1, "second": 0})
    assert {_served_by(hrw, ip) for ip in _random_ips(30)} == {"first"}


def test_hrw_no_child_up_answers_503() -> None:
    hrw = _balancer({"first": 1, "second": 1})
    hrw.set_status("first", False)
    hrw.set_status("second", False)
    assert _serve(hrw, "10.0.0.1") == NO_SERVER


def test_hrw_down_child_is_skipped_and_comes_back() -> None:
    hrw = _balancer({"first": 1, "second": 1})
    hrw.set_status("second", False)
    assert {_served_by(hrw, ip) for ip in _random_ips(30)} == {"first"}
    hrw.set_status("second", True)
    counts = {"first": 0, "second": 0}
    for ip in _random_ips(100, seed=1):
        counts[_served_by(hrw, ip)] += 1
    assert abs(counts["first"] - 50) <= 10


def test_hrw_reports_up_and_down_to_its_parent_only_when_it_flips() -> None:
    top = HighestRandomWeight(
        [Child("b1", _stub("b1")), Child("b2", _stub("b2"))], health_check=True
    )
    inner = _balancer({"third": 1, "fourth": 1}, health_check=True)
    reports: list[bool] = []
    inner.register_status_updater(reports.append)
    inner.register_status_updater(lambda up: top.set_status("b2", up))
    inner.set_status("fourth", False)
    assert reports == []  # third still up
    inner.set_status("third", False)
    assert reports == [False]
    assert {top.pick(ip) for ip in _random_ips(50)} == {"b1"}
    inner.set_status("third", True)
    assert reports == [False, True]


def test_hrw_refuses_a_status_updater_without_health_check() -> None:
    with pytest.raises(ValueError, match="healthCheck not enabled"):
        _balancer({"a": 1}).register_status_updater(lambda up: None)


# ------------------------------------------------------------------ fenced children
# Traefik's Server.Fenced (strategy hrw on a Service whose endpoint is terminating).


def test_hrw_moves_a_fenced_childs_clients_as_if_it_were_down() -> None:
    fenced = _balancer({"a": 1, "b": 2, "c": 1}, fenced={"b"})
    down = _balancer({"a": 1, "b": 2, "c": 1})
    down.set_status("b", False)
    ips = _random_ips(60)
    got = [_served_by(fenced, ip) for ip in ips]
    assert got == [_served_by(down, ip) for ip in ips]
    assert set(got) == {"a", "c"}
    # the clients of the unfenced children stay where they were; only b's moved
    before = [_served_by(_balancer({"a": 1, "b": 2, "c": 1}), ip) for ip in ips]
    assert "b" in before
    assert [g for g, w in zip(got, before, strict=True) if w != "b"] == [
        w for w in before if w != "b"
    ]


def test_hrw_with_every_child_fenced_answers_503() -> None:
    assert _serve(_balancer({"a": 1, "b": 1}, fenced={"a", "b"}), "10.0.0.1") == NO_SERVER


def test_hrw_fenced_child_stays_fenced_and_up_for_the_parent() -> None:
    hrw = _balancer({"a": 1, "b": 1}, fenced={"b"}, health_check=True)
    heard: list[bool] = []
    hrw.register_status_updater(heard.append)
    hrw.set_status("b", False)
    hrw.set_status("b", True)
    assert {_served_by(hrw, ip) for ip in _random_ips(30)} == {"a"}
    hrw.set_status("a", False)
    assert heard == []  # b, fenced, is still UP
    assert _serve(hrw, "10.0.0.1") == NO_SERVER
