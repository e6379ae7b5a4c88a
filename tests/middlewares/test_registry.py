"""The middleware kinds: the config layer's list, the CRD readers and the runtime registry
name the same kinds, and the builder gives each router its own instances."""

from __future__ import annotations

from traefikservice_asgi.builder import build_runtime
from traefikservice_asgi.config import load_config
from traefikservice_asgi.config.crd.middleware import (
    NAMESPACED_READERS,
    NOT_IMPLEMENTED,
    SPEC_READERS,
)
from traefikservice_asgi.config.middlewares import MIDDLEWARE_KINDS
from traefikservice_asgi.middlewares import MIDDLEWARES


def test_every_kind_read_has_a_runtime_class_and_the_lists_agree() -> None:
    assert set(MIDDLEWARES) == set(MIDDLEWARE_KINDS)
    assert {*SPEC_READERS, *NAMESPACED_READERS} == {*MIDDLEWARE_KINDS, "chain"}
    assert not set(SPEC_READERS) & set(NAMESPACED_READERS)


TRAEFIK_3_7_KINDS = {
    # pkg/provider/kubernetes/crd/traefikio/v1alpha1/middleware.go, MiddlewareSpec
    *("addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex"),
    *("chain", "ipWhiteList", "ipAllowList", "headers", "errors", "rateLimit"),
    *("redirectRegex", "redirectScheme", "basicAuth", "digestAuth", "forwardAuth"),
    *("inFlightReq", "buffering", "circuitBreaker", "compress", "passTLSClientCert"),
    *("retry", "contentType", "encodedCharacters", "grpcWeb", "plugin"),
}


def test_every_traefik_kind_is_read_or_refused_with_its_reason() -> None:
    read = {*SPEC_READERS, *NAMESPACED_READERS}
    assert read | set(NOT_IMPLEMENTED) == TRAEFIK_3_7_KINDS
    assert set(NOT_IMPLEMENTED) == {"grpcWeb", "passTLSClientCert"}
    assert all(": " in why for why in NOT_IMPLEMENTED.values())  # the reason follows


SHARED = """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: api}
spec: {addPrefix: {prefix: /api}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop}
spec:
  routes:
    - {match: Host(`a.test`), middlewares: [{name: api}], services: [{name: app, port: 80}]}
    - {match: Host(`b.test`), middlewares: [{name: api}], services: [{name: app, port: 80}]}
    - {match: Host(`c.test`), services: [{name: app, port: 80}]}
"""


def test_routes_sharing_a_middleware_get_one_instance_each_and_plain_routes_none(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "r.yaml").write_text(SHARED)
    config = load_config(tmp_path, backends={"default/app:80": "http://127.0.0.1:9"})
    a, b, c = build_runtime(config).routes
    assert type(a.handler).__name__ == type(b.handler).__name__ == "AddPrefix"
    assert a.handler is not b.handler
    assert type(c.handler).__name__ == "Server"  # no wrapper on a route without middlewares
