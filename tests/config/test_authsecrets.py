"""The Secrets of basicAuth / digestAuth / forwardAuth as Traefik's CRD provider reads
them. A Secret it would not read makes it skip the Middleware, user lines it reads but
cannot build a middleware of fail the router: either is an error where a route uses the
Middleware, a located warning elsewhere."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.support.config import errors, middleware_route
from traefikservice_asgi import ConfigError, load_config_text
from traefikservice_asgi.config.middlewares import BasicAuth, DigestAuth

BACKENDS = {"default/app:80": "http://127.0.0.1:9"}


def route_spec(text: str) -> BasicAuth | DigestAuth:
    config = load_config_text(text, backends=BACKENDS)
    spec = config.routes[0].middlewares[0].spec
    assert isinstance(spec, (BasicAuth, DigestAuth))
    return spec


def test_an_opaque_secrets_one_key_gives_its_lines_base64_data_or_string_data() -> None:
    lines = "ann:{SHA}x\r\n\nbob:$apr1$a$b\n"
    data = base64.b64encode(lines.encode()).decode()
    secret = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata: {{users: {data}}}\n---\n"
    spec = route_spec(secret + middleware_route("{basicAuth: {secret: s, realm: r}}"))
    assert spec.users == ("ann:{SHA}x", "bob:$apr1$a$b") and spec.realm == "r"
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {d: 'ann:shop:abc'}\n---\n"
    )
    assert route_spec(secret + middleware_route("{digestAuth: {secret: s}}")).users == (
        "ann:shop:abc",
    )


def test_a_basic_auth_typed_secret_is_one_user_with_a_sha1_password() -> None:
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/basic-auth\n"
        "stringData: {username: kate, password: pw}\n---\n"
    )
    digest = base64.b64encode(hashlib.sha1(b"pw").digest()).decode()
    assert route_spec(secret + middleware_route("{basicAuth: {secret: s}}")).users == (
        f"kate:{{SHA}}{digest}",
    )


UNREADABLE = (
    "apiVersion: v1\nkind: Secret\nmetadata: {name: two}\nstringData: {a: 'x:y', b: 'z:w'}\n---\n"
    'apiVersion: v1\nkind: Secret\nmetadata: {name: empty}\nstringData: {a: "\\n\\n"}\n---\n'
    "apiVersion: v1\nkind: Secret\nmetadata: {name: typed}\ntype: kubernetes.io/basic-auth\n"
    "stringData: {username: kate}\n---\n"
    + "".join(
        f"apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: {name}}}\n"
        f"spec: {spec}\n---\n"
        for name, spec in [
            ("m1", "{basicAuth: {secret: missing}}"),
            ("m2", "{basicAuth: {secret: two}}"),
            ("m3", "{digestAuth: {secret: empty}}"),
            ("m4", "{basicAuth: {secret: typed}}"),
            ("m7", "{basicAuth: {realm: x}}"),
            ("m8", "{forwardAuth: {tls: {caSecret: missing}, address: 'http://a'}}"),
            ("m9", "{forwardAuth: {address: ''}}"),
        ]
    )
)
UNREADABLE_PROBLEMS = [
    "Middleware default/m1: spec.basicAuth.secret: secret 'default/missing' not found",
    "Middleware default/m2: spec.basicAuth.secret: found 2 elements for secret "
    "'default/two', must be single element exactly",
    "Middleware default/m3: spec.digestAuth.secret: secret 'default/empty' does not "
    "contain any credentials",
    "Middleware default/m4: spec.basicAuth.secret: secret 'default/typed' must contain "
    "both username and password keys",
    "Middleware default/m7: spec.basicAuth.secret: auth secret must be set",
    "Middleware default/m8: spec.forwardAuth.tls.caSecret: failed to load auth ca secret: "
    "secret "
    "'default/missing' not found",
    "Middleware default/m9: spec.forwardAuth.address: forward authentication requires an address",
]
SKIPPED = (
    "Traefik's provider skips this Middleware, and a router using it is not served: the "
    "middleware does not exist"
)


def test_each_unreadable_secret_skips_its_middleware_a_warning_when_no_route_uses_it() -> None:
    # kubernetes.go's loadConfigurationFromCRD logs "Error while reading basic auth
    # middleware" (digest, forward) and goes on to the next Middleware.
    config = load_config_text(UNREADABLE, filename="routes.yaml")
    found = [str(w) for w in config.warnings]
    assert [w.split(": ", 1)[1] for w in found] == [
        f"{problem}: no route uses this Middleware; one that does is refused ({SKIPPED})"
        for problem in UNREADABLE_PROBLEMS
    ]
    assert all(w.startswith("routes.yaml:") for w in found)


def test_each_unreadable_secret_is_an_error_naming_the_route_that_uses_its_middleware() -> None:
    names = [problem.split(": ")[0].rpartition("/")[2] for problem in UNREADABLE_PROBLEMS]
    found = errors(UNREADABLE + _route(*names), backends=BACKENDS)
    assert [issue.split(": ", 1)[1].partition(" (used by ")[0] for issue in found] == (
        UNREADABLE_PROBLEMS
    )
    assert all(issue.endswith(f"; {SKIPPED})") for issue in found)


def test_base64_data_may_span_lines_as_go_decodes_it() -> None:
    data = base64.b64encode(b"ann:{SHA}x\n").decode()
    broken = data[:4] + "\n    " + data[4:]
    secret = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n  users: |\n    {broken}\n---\n"
    assert route_spec(secret + middleware_route("{basicAuth: {secret: s}}")).users == (
        "ann:{SHA}x",
    )


UNPARSABLE = (
    "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\nstringData: {a: 'a:b:c'}\n---\n"
    "apiVersion: v1\nkind: Secret\nmetadata: {name: short}\nstringData: {a: 'kate:x'}\n---\n"
    "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: m5}\n"
    "spec: {basicAuth: {secret: bad}}\n---\n"
    "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: m6}\n"
    "spec: {digestAuth: {secret: short}}\n---\n"
)


def _route(*middlewares: str) -> str:
    names = ", ".join(f"{{name: {m}}}" for m in middlewares)
    return (
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: shop}\nspec:\n"
        f"  routes:\n    - {{match: Host(`a.test`), middlewares: [{names}], "
        "services: [{name: app, port: 80}]}\n"
    )


def test_user_lines_traefik_cannot_parse_are_a_warning_when_no_route_uses_them() -> None:
    # Traefik's provider loads the lines as they are; only building the middleware for
    # a router fails (with_auth.yml: its digestAuth holds htpasswd lines).
    config = load_config_text(UNPARSABLE, filename="routes.yaml")
    found = [str(w) for w in config.warnings]
    assert found == [
        "routes.yaml:11: Middleware default/m5: spec.basicAuth.secret: error parsing "
        "BasicUser: a:b:c: no route uses this Middleware; one that does is refused (Traefik "
        "does not serve a router whose middleware it cannot build)",
        "routes.yaml:16: Middleware default/m6: spec.digestAuth.secret: error parsing "
        "DigestUser: kate:x: no route uses this Middleware; one that does is refused (Traefik "
        "does not serve a router whose middleware it cannot build)",
    ]


def test_user_lines_traefik_cannot_parse_are_an_error_where_a_route_uses_them() -> None:
    found = errors(UNPARSABLE + _route("m6"), backends=BACKENDS)
    assert found == [
        "routes.yaml:16: Middleware default/m6: spec.digestAuth.secret: error parsing "
        "DigestUser: kate:x (used by routes.yaml:26 (IngressRoute default/shop "
        "spec.routes[0].middlewares[0]); Traefik does not serve a router whose middleware "
        "it cannot build)"
    ]


def test_a_middleware_used_by_two_routes_is_reported_once_and_a_chain_counts_as_use() -> None:
    chain = (
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: both}\n"
        "spec: {chain: {middlewares: [{name: m5}, {name: m6}]}}\n---\n"
    )
    found = errors(UNPARSABLE + chain + _route("both"), backends=BACKENDS)
    assert [line.split(": ")[1] for line in found] == [
        "Middleware default/m5",
        "Middleware default/m6",
    ]
    text = UNPARSABLE + _route("m5") + "---\n" + _route("m5").replace("name: shop", "name: two")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, backends=BACKENDS)
    assert len(info.value.issues) == 1
