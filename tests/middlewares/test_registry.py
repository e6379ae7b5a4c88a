"""The middleware kinds: the config layer's list, the CRD readers and the runtime registry
name the same kinds, the builder gives each router its own instances, and a chain changes
the scope it is given only where nobody else holds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.support.asgi import run
from traefikservice_asgi.builder import build_runtime
from traefikservice_asgi.config import load_config
from traefikservice_asgi.config.crd.middleware import (
    NAMESPACED_READERS,
    NOT_IMPLEMENTED,
    SPEC_READERS,
)
from traefikservice_asgi.config.middlewares import MIDDLEWARE_KINDS
from traefikservice_asgi.entrypoint.context import FORWARD_KEY, forward_of
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.middlewares import MIDDLEWARES, wrap
from traefikservice_asgi.responses import send_proxy_error


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


CHAINS = """
{apiVersion: traefik.io/v1alpha1, kind: Middleware, metadata: {name: strip},
 spec: {stripPrefix: {prefixes: [/api]}}}
---
{apiVersion: traefik.io/v1alpha1, kind: Middleware, metadata: {name: again},
 spec: {retry: {attempts: 2}}}
---
{apiVersion: traefik.io/v1alpha1, kind: Middleware, metadata: {name: tag},
 spec: {headers: {customRequestHeaders: {X-Tag: "1"}, customResponseHeaders: {X-Seen: "1"}}}}
---
{apiVersion: traefik.io/v1alpha1, kind: IngressRoute, metadata: {name: shop},
 spec: {routes: [{match: Host(`a.test`), middlewares: [{name: again}, {name: strip}, {name: tag}],
                  services: [{name: app, port: 80}]}]}}
"""


def _tries(tmp_path: Path, owned: bool) -> tuple[Scope, list[tuple[bytes, list[bytes]]], Any]:
    """The chain again -> strip -> tag around an app refusing its first try: what each
    try received (target, X-Forwarded-Prefix and X-Tag values), the scope it was given
    and the answer's start."""
    (tmp_path / "r.yaml").write_text(CHAINS)
    config = load_config(tmp_path, backends={"default/app:80": "http://127.0.0.1:9"})
    tries: list[tuple[bytes, list[bytes]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        forward = forward_of(scope)
        added = [v for k, v in forward.headers if k in (b"x-forwarded-prefix", b"x-tag")]
        tries.append((forward.target, added))
        if len(tries) == 1:
            await send_proxy_error(send, 502, not_sent=True)  # retried
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chain = wrap(app, config.routes[0].middlewares, owned=owned)
    scope: Scope = {
        "type": "http", "method": "GET", "path": "/api/api/x", "raw_path": b"/api/api/x",
        "query_string": b"", "headers": [(b"host", b"a.test")], "client": ("10.0.0.1", 1),
    }  # fmt: skip
    scope[FORWARD_KEY] = prepare(scope)
    return scope, tries, run(chain, scope)[0]


def test_a_retry_sends_each_try_as_received_even_where_the_chain_owns_the_scope(
    tmp_path: Path,
) -> None:
    # Below a retry nothing changes the scope in place: the second try is stripped and
    # tagged once, as the first (not /api/api/x stripped twice).
    _, tries, start = _tries(tmp_path, owned=True)
    assert tries == [(b"/api/x", [b"/api", b"1"])] * 2
    assert start["status"] == 200 and (b"X-Seen", b"1") in start["headers"]


def test_a_chain_that_does_not_own_the_scope_leaves_it_as_it_was(tmp_path: Path) -> None:
    scope, tries, _ = _tries(tmp_path, owned=False)
    assert forward_of(scope).target == b"/api/api/x"
    assert tries[1] == (b"/api/x", [b"/api", b"1"])
