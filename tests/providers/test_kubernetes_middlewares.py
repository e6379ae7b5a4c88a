"""Middlewares through the Kubernetes provider, against the fake API server (in process):
listed and watched as Traefik's kubernetesCRD provider does, with the Secrets they read.

Each test's routes are compared by what the configuration holds; the same objects served
to the real Traefik beside ``serve --kubernetes`` are in
tests/providers/test_kubernetes_middlewares_vs_traefik.py.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import trustme

from tests.support.fake_apiserver import FakeApiServer
from tests.support.kube import middleware, route, run_provider, secret, service
from traefikservice_asgi.config import Config
from traefikservice_asgi.config.middlewares import (
    BasicAuth,
    DigestAuth,
    ForwardAuth,
    Plugin,
    RateLimit,
    StripPrefix,
)

APP = {"name": "app", "port": 80}


def _sha(user: str, password: str) -> str:
    """An htpasswd line with the ``{SHA}`` hash."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}"


def _served(config: Config) -> dict[str, tuple[Any, ...]]:
    """Each route's host rule -> the specs of its middlewares, in order."""
    return {r.rule.text: tuple(m.spec for m in r.middlewares) for r in config.routes}


def _labelled(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    obj["metadata"]["labels"] = labels
    return obj


def test_provider_serves_a_middleware_from_the_api_and_follows_its_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _served(configs[0]) == {
            "Host(`a.test`)": (StripPrefix(("/api",)),),
            "Host(`plain.test`)": (),
        }
        api.put(middleware("strip", stripPrefix={"prefixes": ["/v2"]}))  # MODIFIED
        await loads(2)
        assert _served(configs[1])["Host(`a.test`)"] == (StripPrefix(("/v2",)),)
        api.delete("traefik.io/v1alpha1", "Middleware", "default", "strip")
        await loads(3)
        # As in Traefik, a router whose middleware does not exist is not served; the
        # route without middlewares goes on.
        assert _served(configs[2]) == {"Host(`plain.test`)": ()}
        api.put(middleware("strip", stripPrefix={"prefixes": ["/v3"]}))  # ADDED again
        await loads(4)
        assert _served(configs[3])["Host(`a.test`)"] == (StripPrefix(("/v3",)),)

    run_provider(
        scenario,
        service("app"),
        middleware("strip", stripPrefix={"prefixes": ["/api"]}),
        route("a", "a.test", APP, ["strip"]),
        route("plain", "plain.test", APP),
    )
    gone = 'IngressRoute default/a: spec.routes[0].middlewares[0].name: middleware "default-strip'
    assert gone in caplog.text


def test_provider_reads_a_basic_auth_secret_and_follows_its_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = _sha("ann", "one"), _sha("ann", "two")

    def users(config: Config) -> tuple[str, ...]:
        (spec,) = _served(config)["Host(`a.test`)"]
        assert isinstance(spec, BasicAuth)
        return spec.users

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert users(configs[0]) == (first,)
        api.put(secret("users", users=second))  # a Secret alone changed: applied live
        await loads(2)
        assert users(configs[1]) == (second,)
        api.delete("v1", "Secret", "default", "users")
        await loads(3)
        assert _served(configs[2]) == {"Host(`plain.test`)": ()}

    prov = run_provider(
        scenario,
        service("app"),
        secret("users", users=first),
        middleware("auth", basicAuth={"secret": "users"}),
        route("a", "a.test", APP, ["auth"]),
        route("plain", "plain.test", APP),
    )
    # Traefik: "Error while reading basic auth middleware", the Middleware skipped, its
    # routers 404; here the Middleware and the IngressRoute using it are left out.
    assert "Middleware default/auth" in caplog.text
    assert "secret 'default/users' not found" in caplog.text
    assert prov.skipped_objects == 2


_CA = trustme.CA().cert_pem.bytes().decode()
_DIGEST = "ann:traefik:" + hashlib.md5(b"ann:traefik:one").hexdigest()
# kind: (the Middleware's spec naming Secret "s", the Secret's data, its value as resolved)
SECRET_READERS: dict[str, tuple[dict[str, Any], dict[str, str], Any]] = {
    "digestAuth.secret": ({"digestAuth": {"secret": "s"}}, {"users": _DIGEST}, (_DIGEST,)),
    "forwardAuth.tls.caSecret": (
        {"forwardAuth": {"address": "http://127.0.0.1:9/auth", "tls": {"caSecret": "s"}}},
        {"ca.crt": _CA},
        _CA,
    ),
    "rateLimit.redis.secret": (
        {"rateLimit": {"average": 10, "redis": {"endpoints": ["127.0.0.1:9"], "secret": "s"}}},
        {"username": "ann", "password": "one"},
        ("ann", "one"),
    ),
}


def _resolved(spec: Any) -> Any:
    if isinstance(spec, DigestAuth):
        return spec.users
    if isinstance(spec, ForwardAuth) and spec.tls is not None:
        return spec.tls.ca
    assert isinstance(spec, RateLimit) and spec.redis is not None
    return (spec.redis.username, spec.redis.password)


@pytest.mark.parametrize("field", sorted(SECRET_READERS))
def test_provider_reads_the_secret_a_middleware_names_and_skips_it_when_gone(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec, data, value = SECRET_READERS[field]

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        (resolved,) = _served(configs[0])["Host(`a.test`)"]
        assert _resolved(resolved) == value
        api.delete("v1", "Secret", "default", "s")
        await loads(2)
        assert _served(configs[1]) == {"Host(`plain.test`)": ()}

    run_provider(
        scenario,
        service("app"),
        secret("s", **data),
        middleware("m", **spec),
        route("a", "a.test", APP, ["m"]),
        route("plain", "plain.test", APP),
    )
    assert f"Middleware default/m: spec.{field}: " in caplog.text


def test_provider_resolves_a_plugins_secret_values_and_follows_their_changes() -> None:
    def config(config: Config) -> dict[str, Any]:
        (spec,) = _served(config)["Host(`a.test`)"]
        assert isinstance(spec, Plugin)
        return spec.config

    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert config(configs[0]) == {"header": "X-Token", "value": "first"}
        api.put(secret("tok", token="second"))
        await loads(2)
        assert config(configs[1]) == {"header": "X-Token", "value": "second"}

    tenant = {"header": "X-Token", "value": "urn:k8s:secret:tok:token"}
    run_provider(
        scenario,
        service("app"),
        secret("tok", token="first"),
        middleware("tenant", plugin={"tenant": tenant}),
        route("a", "a.test", APP, ["tenant"]),
    )


def test_provider_skips_an_invalid_middleware_and_the_routes_using_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _served(configs[0]) == {
            "Host(`plain.test`)": (),
            "Host(`good.test`)": (StripPrefix(("/api",)),),
        }

    prov = run_provider(
        scenario,
        service("app"),
        middleware("bad", stripPrefix={"prefixs": ["/api"]}),
        middleware("good", stripPrefix={"prefixes": ["/api"]}),
        route("a", "a.test", APP, ["bad"]),
        route("good", "good.test", APP, ["good"]),
        route("plain", "plain.test", APP),
    )
    assert prov.skipped_objects == 2  # the Middleware, then the IngressRoute using it
    assert "Middleware default/bad: spec.stripPrefix.prefixs" in caplog.text


def test_provider_label_selector_applies_to_middlewares() -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        # default/unlabelled is not listed: the route using it is left out
        assert _served(configs[0]) == {"Host(`blue.test`)": (StripPrefix(("/blue",)),)}
        selectors = [p for p in api.requests if "/middlewares?" in p]
        assert selectors and all("labelSelector=team%3Dblue" in p for p in selectors)

    run_provider(
        scenario,
        service("app"),
        _labelled(middleware("blue", stripPrefix={"prefixes": ["/blue"]}), team="blue"),
        middleware("unlabelled", stripPrefix={"prefixes": ["/x"]}),
        _labelled(route("blue", "blue.test", APP, ["blue"]), team="blue"),
        _labelled(route("other", "other.test", APP, ["unlabelled"]), team="blue"),
        label_selector="team=blue",
    )


def test_provider_cross_namespace_middlewares_follow_the_file_rules(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _served(configs[0]) == {"Host(`same.test`)": (StripPrefix(("/same",)),)}

    objects = (
        service("app"),
        middleware("same", stripPrefix={"prefixes": ["/same"]}),
        middleware("strip", "other", stripPrefix={"prefixes": ["/other"]}),
        route("same", "same.test", APP, ["same"]),
        route("cross", "cross.test", APP, ["other/strip"]),
    )
    run_provider(scenario, *objects)
    assert "allowCrossNamespace is disabled" in caplog.text
    caplog.clear()

    async def allowed(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert _served(configs[0])["Host(`cross.test`)"] == (StripPrefix(("/other",)),)

    run_provider(allowed, *objects, load_options={"allow_cross_namespace": True})

    async def unwatched(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        # namespace "other" is not watched: its Middleware does not exist here
        assert _served(configs[0]) == {"Host(`same.test`)": (StripPrefix(("/same",)),)}

    run_provider(
        unwatched, *objects, load_options={"allow_cross_namespace": True}, namespaces=["default"]
    )
    assert 'middleware "other-strip@kubernetescrd" does not exist' in caplog.text


def test_provider_does_not_read_helms_release_secrets() -> None:
    # Traefik lists Secrets with owner!=helm (whatever its labelSelector, which filters
    # the CRDs only): a Secret Helm owns is not found by a basicAuth that names it.
    async def scenario(api: FakeApiServer, configs: list[Config], loads: Any) -> None:
        assert set(_served(configs[0])) == {"Host(`a.test`)"}
        secrets = [p for p in api.requests if p.startswith("/api/v1/secrets")]
        assert secrets and all("labelSelector=owner%21%3Dhelm" in p for p in secrets)

    prov = run_provider(
        scenario,
        service("app"),
        secret("users", users=_sha("ann", "one")),
        _labelled(secret("helm-users", users=_sha("ann", "one")), owner="helm"),
        middleware("auth", basicAuth={"secret": "users"}),
        middleware("helm-auth", basicAuth={"secret": "helm-users"}),
        route("a", "a.test", APP, ["auth"]),
        route("helm", "helm.test", APP, ["helm-auth"]),
    )
    assert prov.skipped_objects == 2
