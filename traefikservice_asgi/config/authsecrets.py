"""The Secrets of the middlewares, read as Traefik's CRD provider reads them
(``pkg/provider/kubernetes/crd/kubernetes.go``: ``createBasicAuthMiddleware``,
``createDigestAuthMiddleware``, ``createForwardAuthMiddleware``, and
``createRateLimitMiddleware`` for a Redis store's credentials and TLS).

In the CRD a ``basicAuth`` or ``digestAuth`` has no ``users`` of its own: they come from
the Secret it names, in the Middleware's namespace. A Secret of type
``kubernetes.io/basic-auth`` (``basicAuth`` only) holds one user, its ``username`` and
``password`` keys, which Traefik turns into ``username:{SHA}base64(sha1(password))``;
any other Secret must hold exactly one key, whose value is htpasswd (or htdigest) lines.
A Secret Traefik cannot read makes its provider skip the Middleware (logged; a router
using it is not served): :func:`with_secrets` raises :class:`SecretProblem` for the
resolver to refuse a route using the Middleware, and to warn about it where none does.

What the Secret holds is not checked by the provider: Traefik puts the user lines and the
PEM text into the dynamic configuration as they are, and only building the middleware for
a router fails on them (that router is then not served). :func:`build_problem` says what
that build would refuse, for the resolver to report where a route uses the Middleware
(and to warn about where none does). A ``plugin``'s ``urn:k8s:secret:`` values are read
here too (:mod:`.pluginconf`).
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import replace

from .middlewares import (
    BasicAuth,
    ClientTLS,
    DigestAuth,
    ForwardAuth,
    MiddlewareSpec,
    Plugin,
    RateLimit,
    Redis,
)
from .pluginconf import UrnProblem, with_plugin_secrets

__all__ = ["BASIC_AUTH_SECRET_TYPE", "SecretProblem", "build_problem", "with_secrets"]

BASIC_AUTH_SECRET_TYPE = "kubernetes.io/basic-auth"
"""Kubernetes' ``SecretTypeBasicAuth``."""

Secrets = Mapping[tuple[str, str], Mapping[str, str]]


class SecretProblem(ValueError):
    """A Secret Traefik would not read; ``field`` is the spec field that names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def with_secrets(
    spec: MiddlewareSpec,
    namespace: str,
    secrets: Secrets,
    types: Mapping[tuple[str, str], str],
) -> MiddlewareSpec:
    """``spec`` with what its Secrets hold filled in (users, PEM text, a plugin's
    secret values); other kinds are returned as they are. Raises
    :class:`SecretProblem` for what Traefik's provider refuses (the Secret itself)."""
    if isinstance(spec, BasicAuth):
        data = _secret(secrets, namespace, spec.secret, "basicAuth.secret")
        if types.get((namespace, spec.secret)) == BASIC_AUTH_SECRET_TYPE:
            users = _basic_auth_secret_user(data, namespace, spec.secret)
        else:
            users = _credentials(data, namespace, spec.secret, "basicAuth.secret")
        return replace(spec, users=users)
    if isinstance(spec, DigestAuth):
        data = _secret(secrets, namespace, spec.secret, "digestAuth.secret")
        users = _credentials(data, namespace, spec.secret, "digestAuth.secret")
        return replace(spec, users=users)
    if isinstance(spec, ForwardAuth) and spec.tls is not None:
        return replace(spec, tls=_client_tls(spec.tls, namespace, secrets, _FORWARD_AUTH_TLS))
    if isinstance(spec, RateLimit) and spec.redis is not None:
        return replace(spec, redis=_redis(spec.redis, namespace, secrets))
    if isinstance(spec, Plugin):
        try:
            return with_plugin_secrets(spec, namespace, secrets)
        except UrnProblem as problem:
            raise SecretProblem(str(problem), problem.field) from None
    return spec


def build_problem(spec: MiddlewareSpec) -> SecretProblem | None:
    """What building ``spec`` (its Secrets read) would refuse, as Traefik's middleware
    builder: a user line ``basicUserParser``/``digestUserParser`` cannot split, a CA,
    certificate or key ``ClientTLS.CreateTLSConfig`` cannot parse (forwardAuth's, or a
    rate limiter's Redis'); None when it builds."""
    try:
        if isinstance(spec, BasicAuth):
            _parse_users(spec.users, 2, "BasicUser", "basicAuth.secret")
        elif isinstance(spec, DigestAuth):
            _parse_users(spec.users, 3, "DigestUser", "digestAuth.secret")
        elif isinstance(spec, ForwardAuth) and spec.tls is not None:
            _check_pem(spec.tls.ca, spec.tls.cert, spec.tls.key, _FORWARD_AUTH_TLS)
        elif isinstance(spec, RateLimit) and spec.redis is not None and spec.redis.tls is not None:
            tls = spec.redis.tls
            _check_pem(tls.ca, tls.cert, tls.key, _REDIS_TLS)
    except SecretProblem as problem:
        return problem
    return None


_FORWARD_AUTH_TLS = ("forwardAuth.tls", "unable to create client TLS configuration")
_REDIS_TLS = ("rateLimit.redis.tls", "creating redis limiter: creating TLS config")


def _redis(redis: Redis, namespace: str, secrets: Secrets) -> Redis:
    """``loadRedisCredentials`` (the Secret's ``username`` and ``password``), then the
    TLS material as ``forwardAuth``'s."""
    if redis.secret:
        data = secrets.get((namespace, redis.secret))
        if data is None:
            raise SecretProblem(
                f"secret '{namespace}/{redis.secret}' not found", "rateLimit.redis.secret"
            )
        if "username" not in data or "password" not in data:
            raise SecretProblem(
                f"secret '{namespace}/{redis.secret}' must contain both username and password keys",
                "rateLimit.redis.secret",
            )
        redis = replace(redis, username=data["username"], password=data["password"])
    if redis.tls is not None:
        redis = replace(redis, tls=_client_tls(redis.tls, namespace, secrets, _REDIS_TLS))
    return redis


def _secret(secrets: Secrets, namespace: str, name: str, field: str) -> Mapping[str, str]:
    data = secrets.get((namespace, name))
    if data is None:
        raise SecretProblem(f"secret '{namespace}/{name}' not found", field)
    return data


def _basic_auth_secret_user(data: Mapping[str, str], namespace: str, name: str) -> tuple[str, ...]:
    """``loadBasicAuthCredentials``: one user, its password stored as ``{SHA}``."""
    if "username" not in data or "password" not in data:
        raise SecretProblem(
            f"secret '{namespace}/{name}' must contain both username and password keys",
            "basicAuth.secret",
        )
    digest = hashlib.sha1(data["password"].encode()).digest()
    return (f"{data['username']}:{{SHA}}{base64.b64encode(digest).decode()}",)


def _credentials(data: Mapping[str, str], namespace: str, name: str, field: str) -> tuple[str, ...]:
    """``loadAuthCredentials``: the one key's value, line by line (Go's
    ``bufio.ScanLines``: ``\\n`` ends a line, a ``\\r`` before it is dropped), empty
    lines skipped; nothing else is trimmed."""
    if len(data) != 1:
        raise SecretProblem(
            f"found {len(data)} elements for secret '{namespace}/{name}', must be single "
            "element exactly",
            field,
        )
    text = next(iter(data.values()))
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    users = tuple(line for line in lines if line)
    if not users:
        raise SecretProblem(f"secret '{namespace}/{name}' does not contain any credentials", field)
    return users


def _parse_users(users: tuple[str, ...], parts: int, what: str, field: str) -> None:
    """Traefik's ``basicUserParser`` / ``digestUserParser``: exactly ``parts`` fields
    separated by ``:`` (the middleware is not built otherwise)."""
    for user in users:
        if len(user.split(":")) != parts:
            raise SecretProblem(f"error parsing {what}: {user}", field)


def _client_tls(
    tls: ClientTLS, namespace: str, secrets: Secrets, where: tuple[str, str]
) -> ClientTLS:
    """``loadCASecret`` (``tls.ca`` or ``ca.crt``, else a Secret's only key) and
    ``loadAuthTLSSecret`` (``tls.crt`` and ``tls.key``); ``where``: the field and the
    prefix of Traefik's error when the material does not parse."""
    field = where[0]
    ca = cert = key = ""
    if tls.ca_secret:
        data = secrets.get((namespace, tls.ca_secret))
        if data is None:
            raise SecretProblem(
                f"failed to load auth ca secret: secret '{namespace}/{tls.ca_secret}' not found",
                f"{field}.caSecret",
            )
        ca = data.get("tls.ca") or data.get("ca.crt") or ""
        if not ca and len(data) == 1:
            ca = next(iter(data.values()))
        if not ca:
            raise SecretProblem(
                f"failed to load auth ca secret: secret '{namespace}/{tls.ca_secret}' has no "
                "CA block: the tls.ca or ca.crt entry is missing",
                f"{field}.caSecret",
            )
    if tls.cert_secret:
        data = secrets.get((namespace, tls.cert_secret))
        if data is None:
            raise SecretProblem(
                f"failed to load auth secret: secret '{namespace}/{tls.cert_secret}' does not "
                "exist",
                f"{field}.certSecret",
            )
        cert, key = data.get("tls.crt", ""), data.get("tls.key", "")
        if not cert or not key:
            raise SecretProblem(
                f"failed to load auth secret: secret '{namespace}/{tls.cert_secret}' needs "
                "tls.crt and tls.key",
                f"{field}.certSecret",
            )
    return replace(tls, ca=ca, cert=cert, key=key)


def _check_pem(ca: str, cert: str, key: str, where: tuple[str, str]) -> None:
    """What Traefik's ``ClientTLS.CreateTLSConfig`` refuses (the Middleware is then not
    built): a CA with no certificate Go can parse, a certificate or key that is not
    PEM. (The pair itself is checked when the runtime loads it.)"""
    field, prefix = where
    if ca:
        try:
            ssl.create_default_context(cadata=ca)
        except (ssl.SSLError, ValueError):
            raise SecretProblem(f"{prefix}: failed to parse CA", f"{field}.caSecret") from None
    if cert:
        try:
            der = ssl.PEM_cert_to_DER_cert(cert.strip())
        except ValueError:
            der = b""
        if not der or "PRIVATE KEY-----" not in key:
            raise SecretProblem(f"{prefix}: failed to load TLS keypair", f"{field}.certSecret")
