"""The Kubernetes provider against the fake API server, in process (no Traefik needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fake_apiserver import FakeApiServer, matches_selector
from tests.support.kube import run_provider
from traefikservice_asgi.config import Config, ConfigError, ServersService
from traefikservice_asgi.config.kubernetes import WATCHED, config_from_objects
from traefikservice_asgi.providers.kubernetes import Connection, KubernetesProvider

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _svc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }


def _route(name: str, host: str, service: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "routes": [
                {
                    "match": f"Host(`{host}`)",
                    "kind": "Rule",
                    "services": [{"name": service, "port": 80}],
                }
            ]
        },
    }


def _hosts(config: Config) -> set[str]:
    return {route.rule.text for route in config.routes}


def test_provider_first_config_then_a_change_then_a_deletion() -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)"}
        api.put(_route("b", "b.test", "app"))
        await loads(2)
        assert _hosts(configs[1]) == {"Host(`a.test`)", "Host(`b.test`)"}
        api.delete("traefik.io/v1alpha1", "IngressRoute", "default", "a")
        await loads(3)
        assert _hosts(configs[2]) == {"Host(`b.test`)"}

    run_provider(scenario, _svc("app"), _route("a", "a.test", "app"))


def test_provider_410_relists_and_drops_what_was_deleted_in_the_gap() -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        api.expire()  # every watch closes; resuming from its version answers 410
        api.delete("traefik.io/v1alpha1", "IngressRoute", "default", "b")
        await loads(2)
        assert _hosts(configs[-1]) == {"Host(`a.test`)"}

    prov = run_provider(
        scenario, _svc("app"), _route("a", "a.test", "app"), _route("b", "b.test", "app")
    )
    assert any(r.relists >= 2 for r in prov.reflectors)


def test_provider_skips_an_invalid_object_and_serves_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = _route("bad", "bad.test", "app")
    bad["spec"]["routes"][0]["services"][0]["weight"] = -1

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)"}

    prov = run_provider(scenario, _svc("app"), _route("a", "a.test", "app"), bad)
    assert prov.skipped_objects == 1
    assert "IngressRoute default/bad" in caplog.text


def test_provider_label_selector_filters_traefik_resources_only() -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)"}

    run_provider(
        scenario,
        _svc("app"),  # no label: Services are not filtered
        _route("a", "a.test", "app", team="blue"),
        _route("b", "b.test", "app", team="red"),
        label_selector="team=blue",
    )


def test_provider_retries_until_the_api_answers() -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)"}
        assert api.requests.count("/api/v1/services") >= 1

    run_provider(scenario, _svc("app"), _route("a", "a.test", "app"), faults=[503] * 6)


def test_config_from_objects_names_objects_in_issues() -> None:
    bad = _route("bad", "bad.test", "missing")
    load = config_from_objects([_svc("app"), bad], {"cluster_dns": False})
    assert load.config.routes == ()
    assert [issue.file for issue in load.skipped] == ["IngressRoute default/bad"]


def test_config_from_objects_leaves_out_the_failed_routes_of_an_ingress_route() -> None:
    # As Traefik: a route whose middleware does not exist, or whose service is bad, is
    # not served; the other routes of its IngressRoute are. Issues of a later round name
    # the route by its index in the object as the API has it.
    bad_middleware = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"stripPrefix": {"prefixs": ["/x"]}},
    }
    ingress = _route("multi", "ok.test", "app")
    first = ingress["spec"]["routes"][0]
    ingress["spec"]["routes"] = [
        {
            **first,
            "match": "Host(`weight.test`)",
            "services": [{"name": "app", "port": 80, "weight": -1}],
        },
        first,
        {**first, "match": "Host(`mw.test`)", "middlewares": [{"name": "bad"}]},
    ]
    load = config_from_objects([_svc("app"), bad_middleware, ingress])
    assert _hosts(load.config) == {"Host(`ok.test`)"}
    assert [(issue.file, issue.path) for issue in load.skipped] == [
        ("IngressRoute default/multi", "spec.routes[0].services[0].weight"),
        ("Middleware default/bad", "spec.stripPrefix.prefixs"),
        ("IngressRoute default/multi", "spec.routes[2].middlewares[0].name"),
    ]


def test_config_from_objects_fences_a_terminating_endpoint_of_an_api_endpoint_slice() -> None:
    # The API object as the API server sends it (JSON, with bookkeeping metadata): the
    # conditions survive object_document, and the config layer fences the server.
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "app-abcde",
            "namespace": "default",
            "resourceVersion": "42",
            "labels": {"kubernetes.io/service-name": "app"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
            {
                "addresses": ["10.0.0.2"],
                "conditions": {"ready": False, "serving": True, "terminating": True},
            },
        ],
    }
    load = config_from_objects([_svc("app"), endpoint_slice, _route("a", "a.test", "app")])
    (route,) = load.config.routes
    assert isinstance(route.service, ServersService) and not load.skipped
    assert route.service.fenced == ("http://10.0.0.2:8080",)


def test_label_selector_of_the_fake_is_kubernetes_syntax() -> None:
    labels = {"owner": "me", "tier": "web"}
    assert matches_selector(labels, "owner!=helm,tier in (web, api)")
    assert not matches_selector(labels, "owner=helm")
    assert matches_selector(labels, "!missing,tier")


def test_rbac_grants_exactly_get_list_watch_on_the_watched_kinds() -> None:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()) if d]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    granted = {
        (group, resource): tuple(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {(k.group, k.plural): ("get", "list", "watch") for k in WATCHED}


def test_provider_namespaces_watch_only_those_namespaces() -> None:
    other = _route("o", "other.test", "app")
    other["metadata"]["namespace"] = "other"

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)"}
        watches = [p for p in api.requests if "watch=" in p]
        assert all("/namespaces/default/" in p for p in watches if "/nodes?" not in p)
        # Nodes are cluster-scoped: listed (before the first configuration) cluster-wide,
        # whatever the namespaces, as Traefik lists them
        assert any(p.startswith("/api/v1/nodes") for p in api.requests)

    run_provider(scenario, _svc("app"), _route("a", "a.test", "app"), other, namespaces=["default"])


def test_connection_from_kubeconfig_reads_the_current_context(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "current-context": "dev",
                "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
                "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443/"}}],
                "users": [{"name": "u", "user": {"tokenFile": "token"}}],
            }
        )
    )
    connection = Connection.from_kubeconfig(kubeconfig)
    assert connection.server == "https://10.0.0.1:6443"
    assert connection.headers()["Authorization"] == "Bearer from-file"


def test_connection_in_cluster_uses_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("t1")
    connection = Connection.in_cluster(tmp_path)
    assert connection.server == "https://10.96.0.1:443"
    assert connection.headers()["Authorization"] == "Bearer t1"
    (tmp_path / "token").write_text("t2")  # a bound token rotates: read on every connection
    assert connection.headers()["Authorization"] == "Bearer t2"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ValueError, match="KUBERNETES_SERVICE_HOST is not set"):
        Connection.in_cluster(tmp_path)


def test_provider_serves_files_beside_the_api_objects() -> None:
    file_route = yaml.safe_dump(_route("f", "file.test", "app"))

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _hosts(configs[0]) == {"Host(`a.test`)", "Host(`file.test`)"}

    run_provider(
        scenario, _svc("app"), _route("a", "a.test", "app"), files=[(file_route, "f.yaml")]
    )


def test_provider_refuses_to_start_on_a_bad_file() -> None:
    bad = _route("f", "file.test", "app")
    bad["spec"]["routes"][0]["services"][0]["weight"] = -1
    with FakeApiServer() as api:
        api.put(_svc("app"))
        provider = KubernetesProvider(
            Connection(api.url), lambda config: None, files=[(yaml.safe_dump(bad), "f.yaml")]
        )
        with pytest.raises(ConfigError, match=r"f\.yaml:.*weight"):
            asyncio.run(asyncio.wait_for(provider.run(), 10))


def test_provider_loads_each_configuration_in_a_paced_thread_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The objects' YAML, parse and resolve are O(objects): each load runs beside the
    # loop, where a reload's pacing hook is installed (reload.run_paced).
    import threading

    import traefikservice_asgi.providers.kubernetes as provider_module
    from traefikservice_asgi.config import _pacing

    seen: list[tuple[str, bool]] = []
    original = provider_module.config_from_objects

    def recorded(*args: Any, **kwargs: Any) -> Any:
        paced = getattr(_pacing._local, "hook", None) is not None
        seen.append((threading.current_thread().name, paced))
        return original(*args, **kwargs)

    monkeypatch.setattr(provider_module, "config_from_objects", recorded)

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        api.put(_route("b", "b.test", "app"))
        await loads(2)

    run_provider(scenario, _svc("app"), _route("a", "a.test", "app"))
    assert len(seen) >= 2
    assert all(name != threading.main_thread().name and paced for name, paced in seen)
