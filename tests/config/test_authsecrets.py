"""The Secrets of basicAuth / digestAuth as Traefik's CRD provider reads them, and each
Secret it would not read as a located load error."""

from __future__ import annotations

import base64
import hashlib

from tests.support.config import errors, middleware_route
from traefikservice_asgi import load_config_text
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


def test_each_unreadable_secret_is_an_error_at_the_middleware() -> None:
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: two}\nstringData: {a: 'x:y', b: 'z:w'}\n---\n"
        'apiVersion: v1\nkind: Secret\nmetadata: {name: empty}\nstringData: {a: "\\n\\n"}\n---\n'
        "apiVersion: v1\nkind: Secret\nmetadata: {name: typed}\ntype: kubernetes.io/basic-auth\n"
        "stringData: {username: kate}\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\nstringData: {a: 'a:b:c'}\n---\n"
    )
    specs = [
        ("m1", "{basicAuth: {secret: missing}}"),
        ("m2", "{basicAuth: {secret: two}}"),
        ("m3", "{digestAuth: {secret: empty}}"),
        ("m4", "{basicAuth: {secret: typed}}"),
        ("m5", "{basicAuth: {secret: bad}}"),
        ("m6", "{digestAuth: {secret: typed}}"),
        ("m7", "{basicAuth: {realm: x}}"),
    ]
    for name, spec in specs:
        text += f"apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: {name}}}\nspec: {spec}\n---\n"
    found = errors(text)
    wanted = [
        "Middleware default/m1: spec.basicAuth.secret: secret 'default/missing' not found",
        "Middleware default/m2: spec.basicAuth.secret: found 2 elements for secret "
        "'default/two', must be single element exactly",
        "Middleware default/m3: spec.digestAuth.secret: secret 'default/empty' does not "
        "contain any credentials",
        "Middleware default/m4: spec.basicAuth.secret: secret 'default/typed' must contain "
        "both username and password keys",
        "Middleware default/m5: spec.basicAuth.secret: error parsing BasicUser: a:b:c",
        "Middleware default/m6: spec.digestAuth.secret: error parsing DigestUser: kate",
        "Middleware default/m7: spec.basicAuth.secret: auth secret must be set",
    ]
    for message in wanted:
        assert any(message in line and line.startswith("routes.yaml:") for line in found), (
            message,
            found,
        )
    assert len(found) == len(wanted)


def test_base64_data_may_span_lines_as_go_decodes_it() -> None:
    data = base64.b64encode(b"ann:{SHA}x\n").decode()
    broken = data[:4] + "\n    " + data[4:]
    secret = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n  users: |\n    {broken}\n---\n"
    assert route_spec(secret + middleware_route("{basicAuth: {secret: s}}")).users == (
        "ann:{SHA}x",
    )
