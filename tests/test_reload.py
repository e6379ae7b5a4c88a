"""Live reload, in process: what counts as "changed", which nodes keep their state, the
summary and the counters, a bad configuration keeping the last good one."""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
import random

import pytest

from tests.support.asgi import call_gateway
from tests.support.backends import RecordingBackend
from traefikservice_asgi import ConfigError, load_config_text
from traefikservice_asgi.app import create_app
from traefikservice_asgi.builder import build_runtime
from traefikservice_asgi.config import Config
from traefikservice_asgi.loadbalancer.wrr import WeightedRoundRobin
from traefikservice_asgi.options import GatewayOptions
from traefikservice_asgi.reload import summarize
from traefikservice_asgi.reuse import node_key
from traefikservice_asgi.runtime import Runtime

BACKENDS = {
    "default/a:80": ["http://127.0.0.1:9002", "http://127.0.0.1:9003"],
    "default/b:80": "http://127.0.0.1:9004",
    "default/c:80": "http://127.0.0.1:9005",
    # p2c and leasttime each on a Service of their own: Traefik keeps one servers
    # balancer per Service name (the last definition wins), so a strategy set on `a` in
    # one TraefikService would be every parent's.
    "default/d:80": ["http://127.0.0.1:9006", "http://127.0.0.1:9007"],
    "default/e:80": ["http://127.0.0.1:9008", "http://127.0.0.1:9009"],
}

SERVICE_HC = """
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: ext.example.test, ports: [{port: 80}]}
"""

# One TraefikService per node kind; `{X}` placeholders let a test change one of them.
KINDS = {
    "wrr": "weighted: {services: [{name: a, port: 80, weight: 3}, {name: b, port: 80, weight: 1}]}",
    "sticky": "weighted: {services: [{name: a, port: 80}, {name: b, port: 80}], "
    "sticky: {cookie: {name: s}}}",
    "mirror": "mirroring: {name: a, port: 80, mirrors: [{name: b, port: 80, percent: 10}]}",
    "failover": "failover: {service: {name: ext, port: 80, healthCheck: {path: /h, interval: 1h}},"
    " fallback: {name: b, port: 80}}",
    "hrw": "highestRandomWeight: {services: [{name: a, port: 80}, {name: b, port: 80}]}",
    "p2c": "weighted: {services: [{name: d, port: 80, strategy: p2c}, {name: b, port: 80}]}",
    "leasttime": "weighted: {services: [{name: e, port: 80, strategy: leasttime}, "
    "{name: b, port: 80}]}",
}

# A change to each kind's own definition (not to a child).
CHANGED = {
    "wrr": ("weight: 3", "weight: 4"),
    "sticky": ("name: s}", "name: s, httpOnly: true}"),
    "mirror": ("percent: 10", "percent: 20"),
    "failover": ("fallback: {name: b", "fallback: {name: c"),
    "hrw": ("{name: b, port: 80}]", "{name: b, port: 80, weight: 2}]"),
    "p2c": ("strategy: p2c", "strategy: p2c, passHostHeader: false"),
    "leasttime": ("strategy: leasttime", "strategy: leasttime, passHostHeader: false"),
}


def manifest(kinds: dict[str, str] = KINDS, *, preamble: str = "") -> str:
    docs = [preamble + SERVICE_HC]
    routes = []
    for name, spec in kinds.items():
        docs.append(
            f"apiVersion: traefik.io/v1alpha1\nkind: TraefikService\n"
            f"metadata: {{name: {name}, namespace: default}}\nspec:\n  {spec}\n"
        )
        routes.append(
            f"    - match: Host(`{name}.test`)\n      services: [{{name: {name}, kind: TraefikService}}]"
        )
    docs.append(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
        "metadata: {name: r, namespace: default}\nspec:\n  routes:\n" + "\n".join(routes) + "\n"
    )
    return "\n---\n".join(docs)


def load(text: str) -> Config:
    return load_config_text(
        text, filename="live.yaml", backends=BACKENDS, allow_external_name_services=True
    )


@functools.cache
def _route_kinds() -> dict[str, str]:
    # Route names are Traefik's (namespace-name-hash of the rule): map them back to kinds.
    config = load(manifest({**KINDS, "extra": KINDS["wrr"]}))
    return {r.name: r.rule.text.split("`")[1].split(".")[0] for r in config.routes}


def _route_kind(name: str) -> str:
    return _route_kinds().get(name, "")


def test_the_same_values_written_elsewhere_are_unchanged() -> None:
    # Moved lines (another file, a comment above): origins differ, values do not.
    first = load(manifest())
    second = load_config_text(
        manifest(preamble="# a comment\n\n"),
        filename="other.yaml",
        backends=BACKENDS,
        allow_external_name_services=True,
    )
    assert first != second  # the origins differ ...
    for name, service in first.services.items():
        assert node_key(service) == node_key(second.services[name])  # ... the values not
    summary = summarize(first, second)
    assert not summary.changed
    assert str(summary).startswith("no change")


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_node_kind_keeps_its_handler_when_unchanged_and_is_rebuilt_when_changed(
    kind: str,
) -> None:
    options = GatewayOptions(rng=random.Random(1))
    old = build_runtime(load(manifest()), options)
    changed_kinds = dict(KINDS)
    before, after = CHANGED[kind]
    assert before in changed_kinds[kind]
    changed_kinds[kind] = changed_kinds[kind].replace(before, after)
    new_config = load(manifest(changed_kinds, preamble="# moved\n"))
    new = build_runtime(new_config, options, previous=old)
    old_routes = {r.name: r.handler for r in old.routes}
    new_routes = {r.name: r.handler for r in new.routes}
    assert old_routes.keys() == new_routes.keys()
    for name, handler in new_routes.items():
        if _route_kind(name) == kind:
            assert handler is not old_routes[name], f"{kind} changed but was kept"
        else:
            assert handler is old_routes[name], f"{name} unchanged but rebuilt"
    summary = summarize(load(manifest()), new_config)
    # p2c and leasttime balance a Service's servers: that servers node changes too.
    servers = {"p2c": ("default-d-80",), "leasttime": ("default-e-80",)}.get(kind, ())
    assert summary.services_changed == (*servers, f"default-{kind}")
    assert summary.routes_changed == (_route_name(new_config, kind),)


def _route_name(config: Config, kind: str) -> str:
    (name,) = [r.name for r in config.routes if r.rule.text == f"Host(`{kind}.test`)"]
    return name


def test_a_changed_parent_rebuilds_itself_but_keeps_its_unchanged_children() -> None:
    options = GatewayOptions(rng=random.Random(1))
    old = build_runtime(load(manifest()), options)
    kinds = dict(KINDS)
    kinds["wrr"] = kinds["wrr"].replace("weight: 3", "weight: 5")
    new = build_runtime(load(manifest(kinds)), options, previous=old)
    old_wrr = _handler(old, "wrr")
    new_wrr = _handler(new, "wrr")
    assert isinstance(old_wrr, WeightedRoundRobin) and isinstance(new_wrr, WeightedRoundRobin)
    assert new_wrr is not old_wrr
    # The child Service `a` (a servers balancer of two URLs) is the same object.
    old_children = {e.name: e.handler for e in old_wrr._heap}
    new_children = {e.name: e.handler for e in new_wrr._heap}
    assert new_children["default-a-80"] is old_children["default-a-80"]


def _handler(runtime: object, kind: str) -> object:
    (handler,) = [
        r.handler
        for r in runtime.routes  # type: ignore[attr-defined]
        if _route_kind(r.name) == kind
    ]
    return handler


def test_an_unchanged_wrr_continues_its_sequence_across_a_reload() -> None:
    def picks(wrr: object, n: int) -> list[str | None]:
        return [wrr.next_child() for _ in range(n)]  # type: ignore[attr-defined]

    control = build_runtime(load(manifest()), GatewayOptions(rng=random.Random(7)))
    expected = picks(_handler(control, "wrr"), 25)

    options = GatewayOptions(rng=random.Random(7))
    old = build_runtime(load(manifest()), options)
    seen = picks(_handler(old, "wrr"), 10)
    kinds = dict(KINDS)
    kinds["hrw"] = kinds["hrw"].replace("{name: b, port: 80}]", "{name: c, port: 80}]")
    new = build_runtime(load(manifest(kinds)), options, previous=old)
    seen += picks(_handler(new, "wrr"), 15)
    assert seen == expected

    # A changed one restarts, as Traefik's does: its first picks are a fresh schedule's.
    kinds["wrr"] = (
        "weighted: {services: [{name: a, port: 80, weight: 5}, {name: b, port: 80, weight: 2}]}"
    )
    changed = build_runtime(load(manifest(kinds)), options, previous=new)
    fresh = build_runtime(load(manifest(kinds)), GatewayOptions(rng=random.Random(3)))
    assert picks(_handler(changed, "wrr"), 4) == picks(_handler(fresh, "wrr"), 4)


def test_a_change_of_fence_rebuilds_the_servers_balancer_and_only_it() -> None:
    # A pod starting to terminate changes its EndpointSlice's conditions only: the
    # resolved servers node differs (`fenced`), so its balancer is built afresh.
    def config(conditions: str, preamble: str = "") -> Config:
        web = (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
            "spec: {ports: [{name: http, port: 80}]}\n---\n"
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
            "metadata: {name: web-abc, namespace: default, "
            "labels: {kubernetes.io/service-name: web}}\n"
            "ports: [{name: http, port: 8080}]\n"
            "endpoints: [{addresses: [10.0.0.1]}, "
            f"{{addresses: [10.0.0.2], conditions: {conditions}}}]\n---\n"
        )
        kinds = {**KINDS, "web": "weighted: {services: [{name: web, port: 80}]}"}
        return load(manifest(kinds, preamble=preamble + web))

    def web(runtime: Runtime) -> WeightedRoundRobin:
        (outer,) = [r.handler for r in runtime.routes if r.rule.text == "Host(`web.test`)"]
        assert isinstance(outer, WeightedRoundRobin)
        (inner,) = [e.handler for e in outer._heap]
        assert isinstance(inner, WeightedRoundRobin)
        return inner

    options = GatewayOptions(rng=random.Random(1))
    ready = build_runtime(config("{ready: true}"), options)
    going = "{ready: false, serving: true, terminating: true}"
    fenced = build_runtime(config(going), options, previous=ready)
    assert web(fenced) is not web(ready)
    assert {web(fenced).next_child() for _ in range(4)} == {"http://10.0.0.1:8080"}
    others = [r.handler for r in ready.routes if r.rule.text != "Host(`web.test`)"]
    kept = [r.handler for r in fenced.routes if r.rule.text != "Host(`web.test`)"]
    assert len(kept) == len(KINDS) and all(map(operator.is_, kept, others))
    again = build_runtime(config(going, "# moved\n"), options, previous=fenced)
    assert web(again) is web(fenced)  # the same fence, written elsewhere: kept
    summary = summarize(config(going), config("{ready: true}"))
    assert summary.services_changed == ("default-web", "default-web-80")


def test_mirror_counters_and_transport_clients_survive_an_unrelated_change() -> None:
    options = GatewayOptions(rng=random.Random(1))
    old = build_runtime(load(manifest()), options)
    mirroring = _handler(old, "mirror")
    mirroring.total = 41  # type: ignore[attr-defined]
    kinds = dict(KINDS)
    kinds["wrr"] = kinds["wrr"].replace("weight: 3", "weight: 9")
    new = build_runtime(load(manifest(kinds)), options, previous=old)
    assert _handler(new, "mirror") is mirroring
    assert mirroring.total == 41  # type: ignore[attr-defined]
    assert new.mirror_pool is old.mirror_pool
    assert new.holder is old.holder


def test_health_checkers_of_unchanged_services_are_adopted_not_restarted() -> None:
    async def scenario() -> None:
        options = GatewayOptions(rng=random.Random(1))
        old = build_runtime(load(manifest()), options)
        old.start()
        tasks = {t for group in old.health_checks._tasks.values() for t in group}
        assert len(tasks) == 1
        kinds = dict(KINDS)
        kinds["wrr"] = kinds["wrr"].replace("weight: 3", "weight: 9")
        new = build_runtime(load(manifest(kinds)), options, previous=old)
        assert new.health_checks.checkers == old.health_checks.checkers
        assert new.health_checks.adopt(old.health_checks) == 1
        new.start()
        await old.health_checks.aclose()  # the old runtime retired
        kept = {t for group in new.health_checks._tasks.values() for t in group}
        assert kept == tasks
        assert not any(t.done() for t in kept)
        # A changed health check is a new checker: the old one is stopped with its runtime.
        kinds["failover"] = kinds["failover"].replace("interval: 1h", "interval: 2h")
        third = build_runtime(load(manifest(kinds)), options, previous=new)
        assert third.health_checks.adopt(new.health_checks) == 0
        third.start()
        await new.health_checks.aclose()
        assert all(t.done() for t in kept)
        assert len(third.health_checks) == 1
        await third.aclose()

    asyncio.run(scenario())


def test_reload_swaps_counts_and_summarises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        app = create_app(load(manifest()), GatewayOptions(rng=random.Random(1)))
        before = app.runtime
        kinds = dict(KINDS)
        kinds["wrr"] = kinds["wrr"].replace("weight: 3", "weight: 9")
        del kinds["hrw"]
        kinds["extra"] = "weighted: {services: [{name: c, port: 80}]}"
        with caplog.at_level(logging.INFO, logger="traefikservice_asgi.reload"):
            summary = await app.reload(load(manifest(kinds)))
        assert app.runtime is not before
        assert summary.services_added == ("default-c-80", "default-extra")
        assert summary.services_removed == ("default-hrw",)
        assert summary.services_changed == ("default-wrr",)
        assert summary.services_kept == len(app.config.services) - 3  # 2 added, 1 changed
        assert len(summary.routes_added) == len(summary.routes_removed) == 1
        assert app.reload_stats.reloads == 1 and app.reload_stats.failures == 0
        assert app.reload_stats.last_success is not None
        (line,) = [r.getMessage() for r in caplog.records if "reloaded" in r.getMessage()]
        assert line.startswith("configuration reloaded (api): routes + 1")
        # The same values again: nothing is applied.
        again = await app.reload(load(manifest(kinds)))
        assert not again.applied and app.reload_stats.reloads == 1
        await app.aclose()

    asyncio.run(scenario())


def test_a_bad_file_keeps_the_last_good_configuration(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "live.yaml"
    path.write_text(manifest())

    async def scenario() -> None:
        app = create_app(
            [str(path)], GatewayOptions(backends=BACKENDS, allow_external_name_services=True)
        )
        good = app.runtime
        path.write_text(manifest().replace("weight: 3", "weight: -3"))
        with caplog.at_level(logging.ERROR, logger="traefikservice_asgi.reload"):
            with pytest.raises(ConfigError):
                await app.reload()
            with pytest.raises(ConfigError):
                await app.reload()
        assert app.runtime is good
        assert app.reload_stats.failures == 2 and app.reload_stats.reloads == 0
        errors = [r.getMessage() for r in caplog.records if r.getMessage().startswith("error: ")]
        (error,) = errors  # logged once, not on every attempt
        assert error.startswith("error: ") and "live.yaml:" in error and "weight" in error
        path.write_text(manifest().replace("weight: 3", "weight: 4"))
        summary = await app.reload()
        assert summary.services_changed == ("default-wrr",)
        assert app.runtime is not good
        await app.aclose()

    asyncio.run(scenario())


def test_a_reload_disables_the_collector_meanwhile_and_leaves_no_cyclic_garbage() -> None:
    # The reloader freezes what is alive after a reload (reload.py): a replaced runtime
    # must then go by reference counting alone, so every node kind is replaced here and
    # the collector, given back everything frozen, must find nothing unreachable.
    import gc

    changed_kinds = {kind: spec.replace(*CHANGED[kind]) for kind, spec in KINDS.items()}
    app = create_app(load(manifest()), rng=random.Random(1))
    seen: list[bool] = []

    async def scenario() -> int:
        original = app.reloader._prepare

        def prepare(*args: object) -> object:
            seen.append(gc.isenabled())
            return original(*args)  # type: ignore[arg-type]

        app.reloader._prepare = prepare  # type: ignore[method-assign]
        for text in (manifest(changed_kinds), manifest()):
            await app.reload(load(text))
        app.reloader.drain_timeout = 0.0
        await app.aclose()  # the retirements done
        gc.unfreeze()
        return gc.collect()

    gc.unfreeze()  # what earlier reloads froze, garbage of earlier tests included
    gc.collect()
    unreachable = asyncio.run(scenario())
    assert seen == [False, False]
    assert gc.isenabled()
    assert unreachable == 0


LIMITED = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: once, namespace: default}
spec:
  rateLimit: {average: 1, period: 1h, burst: 1}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`kept.test`)
      middlewares: [{name: once}]
      services: [{name: b, port: 80}]
    - match: Host(`OTHER`)
      middlewares: [{name: once}]
      services: [{name: SERVICE, port: 80}]
"""


def test_an_unchanged_route_keeps_its_middleware_instances_across_a_reload() -> None:
    async def statuses(app: object, host: bytes) -> int:
        sent = await call_gateway(app, "GET", b"", host=host)  # type: ignore[arg-type]
        return int(sent[0]["status"])

    with RecordingBackend("b") as b, RecordingBackend("c") as c:
        backends = {"default/b:80": b.url, "default/c:80": c.url}

        def config(other: str = "other.test", service: str = "c") -> Config:
            text = LIMITED.replace("OTHER", other).replace("SERVICE", service)
            return load_config_text(text, filename="live.yaml", backends=backends)

        async def scenario() -> None:
            app = create_app(config(), GatewayOptions(rng=random.Random(1)))
            kept_before = {r.rule.text: r.handler for r in app.runtime.routes}
            for host in (b"kept.test", b"other.test"):
                assert [await statuses(app, host), await statuses(app, host)] == [200, 429]
            # Another route's rule changes: the kept route's limiter (its empty bucket) stays.
            await app.reload(config(other="renamed.test"))
            handlers = {r.rule.text: r.handler for r in app.runtime.routes}
            assert handlers["Host(`kept.test`)"] is kept_before["Host(`kept.test`)"]
            assert await statuses(app, b"kept.test") == 429
            assert await statuses(app, b"renamed.test") == 200  # changed: a new limiter
            # The route's servers change (another Service, another URL): new instances.
            await app.reload(config(other="renamed.test", service="b"))
            assert await statuses(app, b"renamed.test") == 200
            assert await statuses(app, b"kept.test") == 429
            await app.aclose()

        asyncio.run(scenario())


def test_a_paced_thread_waits_until_the_event_loop_has_run() -> None:
    # The thread reaches a checkpoint past its slice while the loop is held by a
    # blocking step: the checkpoint returns only once the loop is free and ran a callback.
    import threading
    import time

    from traefikservice_asgi.config._pacing import checkpoint, pacing
    from traefikservice_asgi.reload import Pacer

    async def scenario() -> tuple[float, float, int]:
        pacer = Pacer(asyncio.get_running_loop(), slice_=0.0)
        loop_held = threading.Event()
        returned = [0.0]

        def work() -> None:
            loop_held.wait(5)
            with pacing(pacer):
                checkpoint()
                returned[0] = time.perf_counter()

        job = asyncio.ensure_future(asyncio.to_thread(work))
        await asyncio.sleep(0)  # the thread started
        loop_held.set()
        time.sleep(0.1)  # noqa: ASYNC251 - the loop held, as a long callback would
        freed = time.perf_counter()
        await asyncio.wait_for(job, 5)
        return freed, returned[0], pacer.waits

    freed, returned, waits = asyncio.run(scenario())
    assert waits == 1
    assert returned >= freed


def test_a_reload_loads_and_builds_in_a_paced_thread(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every checkpoint of the reload (a slice of 0) is a pause for the loop, taken in
    # the loading thread, never on the loop; the reload still applies.
    import threading
    from pathlib import Path

    import traefikservice_asgi.reload as reload_module

    routes = 50
    text = (
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
        "metadata: {name: r, namespace: default}\nspec:\n  routes:\n"
        + "\n".join(
            f"    - match: Host(`h{i}.test`)\n      services: [{{name: b, port: 80}}]"
            for i in range(routes)
        )
    )
    path = Path(str(tmp_path)) / "paced.yaml"
    path.write_text(text)
    pauses: list[str] = []

    class Counted(reload_module.Pacer):
        def __call__(self) -> None:
            pauses.append(threading.current_thread().name)
            super().__call__()

    monkeypatch.setattr(reload_module, "Pacer", Counted)
    monkeypatch.setattr(reload_module, "SLICE", 0.0)

    async def scenario() -> None:
        app = create_app([str(path)], GatewayOptions(backends=BACKENDS))
        path.write_text(text.replace("h0.test", "changed.test"))
        summary = await app.reload()
        assert summary.routes_added and summary.routes_removed
        await app.aclose()

    asyncio.run(scenario())
    assert len(pauses) >= 3 * routes
    assert threading.main_thread().name not in pauses


def test_skip_invalid_logs_what_each_load_left_out_and_a_reload_adds_what_was_fixed(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    from pathlib import Path

    from tests.support.manifests import HALF_VALID

    path = Path(str(tmp_path)) / "live.yaml"
    path.write_text(HALF_VALID)
    options = GatewayOptions(backends={"default/app:80": "http://127.0.0.1:9"}, skip_invalid=True)

    async def scenario() -> None:
        with caplog.at_level(logging.ERROR):
            app = create_app([str(path)], options)
            startup = [r.getMessage() for r in caplog.records if r.name.endswith(".config")]
            assert startup == [f"skipped: {issue}" for issue in app.config.skipped]
            assert [issue.line for issue in app.config.skipped] == [4, 11, 13]
            caplog.clear()
            path.write_text(HALF_VALID.replace("weight: -1", "weight: 1"))
            summary = await app.reload()
        (added,) = [r.name for r in app.config.routes if r.rule.text == "Host(`weight.test`)"]
        assert summary.routes_added == (added,)
        reloaded = [r.getMessage() for r in caplog.records if r.name.endswith(".reload")]
        assert [m for m in reloaded if m.startswith("skipped: ")] == [
            f"skipped: {issue}" for issue in app.config.skipped
        ]
        assert [issue.line for issue in app.config.skipped] == [4, 13]
        await app.aclose()

    asyncio.run(scenario())
