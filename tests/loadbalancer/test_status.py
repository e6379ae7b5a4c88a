"""Status updaters shared by the balancers: parents hear only when the aggregate flips."""

from __future__ import annotations

import pytest
from starlette.types import Receive, Scope, Send

from traefikservice_asgi.exceptions import HealthCheckNotEnabled
from traefikservice_asgi.loadbalancer._status import ChildStatus, StatusUpdaters
from traefikservice_asgi.loadbalancer.failover import Failover
from traefikservice_asgi.loadbalancer.mirror import Mirroring
from traefikservice_asgi.loadbalancer.mirror_pool import MirrorPool
from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin


async def stub(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


def wrr(*names: str, health_check: bool = True) -> WeightedRoundRobin:
    return WeightedRoundRobin([Child(n, stub) for n in names], health_check=health_check)


def test_wrr_tells_its_parents_only_when_the_last_child_goes_down_or_one_comes_back() -> None:
    balancer = wrr("a", "b")
    reports: list[bool] = []
    balancer.register_status_updater(reports.append)
    balancer.set_status("a", False)
    balancer.set_status("a", False)
    assert reports == []
    balancer.set_status("b", False)
    assert reports == [False]
    balancer.set_status("b", False)
    balancer.set_status("a", True)
    balancer.set_status("b", True)
    assert reports == [False, True]


def test_health_travels_up_through_nested_balancers_and_a_failover() -> None:
    servers = wrr("http://s1", "http://s2")
    parent = wrr("servers", "other")
    failover = Failover(parent, stub, health_check=True)
    servers.register_status_updater(lambda up: parent.set_status("servers", up))
    parent.register_status_updater(failover.set_handler_status)
    reports: list[bool] = []
    failover.register_status_updater(reports.append)
    servers.set_status("http://s1", False)
    servers.set_status("http://s2", False)
    assert parent.next_child() == "other"  # skipped, not yet propagated further
    assert reports == []
    parent.set_status("other", False)
    assert failover.up  # the fallback is still UP
    assert reports == [True]  # Traefik reports every flip of the main


def test_a_balancer_without_health_check_refuses_updaters_as_traefik_does() -> None:
    with pytest.raises(HealthCheckNotEnabled, match="this weighted service"):
        wrr("a", health_check=False).register_status_updater(lambda up: None)
    assert issubclass(HealthCheckNotEnabled, ValueError)


def test_mirroring_hands_updaters_to_its_main_only_with_a_health_check() -> None:
    main = wrr("a")
    mirroring = Mirroring(main, [], pool=MirrorPool(), health_check=True)
    reports: list[bool] = []
    mirroring.register_status_updater(reports.append)
    main.set_status("a", False)
    assert reports == [False]
    with pytest.raises(HealthCheckNotEnabled, match="mirroring"):
        Mirroring(main, [], pool=MirrorPool()).register_status_updater(reports.append)
    with pytest.raises(HealthCheckNotEnabled, match="not a status updater"):
        Mirroring(stub, [], pool=MirrorPool(), health_check=True).register_status_updater(
            reports.append
        )


def test_child_status_pickable_is_the_up_set_itself_when_nothing_is_fenced() -> None:
    status = ChildStatus(["a", "b"], StatusUpdaters(enabled=False, kind="test"))
    assert status.pickable is status.up  # no per-pick cost: one set, kept by `set`
    status.set("a", False)
    assert status.pickable == {"b"}


def test_child_status_pickable_leaves_out_fenced_children_through_every_change() -> None:
    status = ChildStatus(["a", "b", "c"], StatusUpdaters(enabled=False, kind="test"), {"b", "x"})
    assert status.fenced == {"b"}  # a name that is no child is dropped
    assert status.up == {"a", "b", "c"} and status.pickable == {"a", "c"}
    status.set("b", False)
    status.set("b", True)
    status.set("c", False)
    assert status.up == {"a", "b"} and status.pickable == {"a"}
    status.set("c", True)
    assert status.pickable == {"a", "c"}
