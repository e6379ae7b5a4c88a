"""``rateLimit.redis`` read as Traefik's CRD provider fills ``dynamic.Redis``: its
defaults, the credentials and TLS material from Secrets, and the errors Traefik reports."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trustme

from traefikservice_asgi import ConfigError, load_config
from traefikservice_asgi.config.middlewares import ClientTLS, Redis

ROUTE = (
    "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r}\n"
    "spec: {routes: [{match: Host(`a.test`), middlewares: [{name: rl}],"
    " services: [{name: app, port: 80}]}]}\n"
)


def secret(name: str, **data: str) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    lines = "".join(f"  {key}: {value}\n" for key, value in encoded.items())
    return f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ndata:\n{lines}"


def load(tmp_path: Path, redis: str, *extra: str) -> Any:
    (tmp_path / "r.yaml").write_text(
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: rl}\n"
        f"spec: {{rateLimit: {{average: 5, redis: {redis}}}}}\n---\n{ROUTE}{''.join(extra)}"
    )
    (route,) = load_config(tmp_path, backends={"default/app:80": "http://127.0.0.1:9"}).routes
    return route.middlewares[0].spec.redis


def test_an_empty_redis_is_traefiks_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "{}") == Redis(
        endpoints=("localhost:6379",),
        read_timeout=3.0,
        write_timeout=3.0,
        dial_timeout=5.0,
    )


def test_every_option_is_read(tmp_path: Path) -> None:
    redis = load(
        tmp_path,
        "{endpoints: ['10.0.0.1:6380'], db: 2, poolSize: 42, minIdleConns: 3, "
        "maxActiveConns: 50, readTimeout: 42s, writeTimeout: 7, dialTimeout: 0, secret: creds}",
        secret("creds", username="ann", password="pw"),
    )
    assert redis == Redis(
        endpoints=("10.0.0.1:6380",),
        secret="creds",
        username="ann",
        password="pw",
        db=2,
        pool_size=42,
        min_idle_conns=3,
        max_active_conns=50,
        read_timeout=42.0,
        write_timeout=7.0,  # a bare integer is seconds, as paerser reads it
        dial_timeout=5.0,  # 0: go-redis' own default
    )
    assert "pw" not in repr(redis)  # Traefik's loggable:"false"


def test_zero_read_and_write_timeouts_mean_none(tmp_path: Path) -> None:
    redis = load(tmp_path, "{readTimeout: 0s, writeTimeout: 0s}")
    assert (redis.read_timeout, redis.write_timeout) == (0.0, 0.0)


def test_tls_material_comes_from_secrets(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("client.test")
    redis = load(
        tmp_path,
        "{tls: {caSecret: ca, certSecret: client, insecureSkipVerify: true}}",
        secret("ca", **{"ca.crt": ca.cert_pem.bytes().decode()}),
        secret(
            "client",
            **{
                "tls.crt": leaf.cert_chain_pems[0].bytes().decode(),
                "tls.key": leaf.private_key_pem.bytes().decode(),
            },
        ),
    )
    assert redis.tls == ClientTLS(
        ca_secret="ca",
        cert_secret="client",
        insecure_skip_verify=True,
        ca=ca.cert_pem.bytes().decode(),
        cert=leaf.cert_chain_pems[0].bytes().decode(),
        key=leaf.private_key_pem.bytes().decode(),
    )


@pytest.mark.parametrize(
    ("redis", "extra", "message"),
    [
        (
            "{secret: nope}",
            "",
            "spec.rateLimit.redis.secret: secret 'default/nope' not found",
        ),
        (
            "{secret: half}",
            secret("half", username="ann"),
            "spec.rateLimit.redis.secret: secret 'default/half' must contain both username "
            "and password keys",
        ),
        (
            "{tls: {caSecret: bad}}",
            secret("bad", ca="not a certificate"),
            "spec.rateLimit.redis.tls.caSecret: creating redis limiter: creating TLS config: "
            "failed to parse CA",
        ),
        (
            "{tls: {certSecret: nope}}",
            "",
            "spec.rateLimit.redis.tls.certSecret: failed to load auth secret: secret "
            "'default/nope' does not exist",
        ),
        ("{endpoints: ['[::1]']}", "", "endpoints[0]: must be host:port"),
        (
            "{endpoints: ['a:1', 'b:2'], tls: {insecureSkipVerify: true}}",
            "",
            "spec.rateLimit.redis.tls: not supported by traefikservice-asgi: TLS towards a "
            "Redis Cluster",
        ),
        ("{db: -1}", "", "spec.rateLimit.redis.db: must be an integer >= 0"),
        ("{password: pw}", "", 'spec.rateLimit.redis.password: unknown field "password"'),
    ],
)
def test_what_traefik_refuses_is_a_located_error(
    tmp_path: Path, redis: str, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, redis, extra)
    assert message in str(info.value)
    assert "r.yaml:" in str(info.value)


def test_traefiks_fixture_fails_on_its_placeholder_ca_as_traefik_does() -> None:
    # with_ratelimit.yml's CA Secret holds an empty PEM block: Traefik 3.7.15 disables
    # its router with this same error (tests/middlewares/test_ratelimit_redis_vs_traefik.py).
    fixture = Path(__file__).resolve().parents[3] / "shared/reference/traefik-crd-fixtures"
    if not fixture.is_dir():
        pytest.skip("Traefik's fixtures are not on this machine")
    with pytest.raises(ConfigError) as info:
        load_config(fixture / "with_ratelimit.yml")
    # Its one error, at the Middleware's field, naming the route that uses it.
    assert (
        "with_ratelimit.yml:1: Middleware default/ratelimit: spec.rateLimit.redis.tls.caSecret: "
        "creating redis limiter: creating TLS config: failed to parse CA" in str(info.value)
    )
    assert "IngressRoute default/test2.route" in str(info.value)
    assert "\n" not in str(info.value)
