"""Loading configuration text in tests: the printed issues of a load that must fail, the
servers of a one-route configuration."""

from __future__ import annotations

import pytest

from traefikservice_asgi import ConfigError, load_config_text
from traefikservice_asgi.config import ServersService


def errors(text: str, filename: str = "routes.yaml", **kwargs: object) -> list[str]:
    """Every issue of loading ``text``, as printed; the load must fail."""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, filename=filename, **kwargs)  # type: ignore[arg-type]
    return [str(issue) for issue in info.value.issues]


def servers_of(text: str, **kwargs: object) -> ServersService:
    """The servers load balancer of the only route of ``text``."""
    (only,) = load_config_text(text, **kwargs).routes  # type: ignore[arg-type]
    assert isinstance(only.service, ServersService)
    return only.service


def middleware_route(spec: str) -> str:
    """A Middleware ``auth`` of ``spec`` (its spec, in flow style) and a route using it
    (Host ``a.test``, Service ``app:80``)."""
    return f"""
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: auth}}
spec: {spec}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: shop}}
spec:
  routes:
    - {{match: Host(`a.test`), middlewares: [{{name: auth}}], services: [{{name: app, port: 80}}]}}
"""


_MIDDLEWARE = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: mw, namespace: default}}
spec:
  {spec}
"""


def middleware_errors(spec: str) -> list[str]:
    """Every issue of loading one Middleware whose spec is ``spec`` (``kind: {...}``)."""
    return errors(_MIDDLEWARE.format(spec=spec))


def unbuilt(spec: str) -> tuple[list[str], list[str]]:
    """What Traefik refuses only for the routers using a Middleware: the warnings of
    loading one Middleware of ``spec`` (``kind: {...}``) that no route uses (the load
    succeeds), then the errors of loading it with a route using it (the load fails)."""
    unused = load_config_text(_MIDDLEWARE.format(spec=spec), filename="routes.yaml")
    warned = [str(w) for w in unused.warnings if "no route uses this Middleware" in w.message]
    return warned, errors(middleware_route(f"{{{spec}}}"))


def assert_unbuilt(spec: str, problem: str) -> None:
    """``problem`` (``field: message``) is the one warning of a Middleware of ``spec``
    that no route uses, and the one error, naming the route, where a route uses it."""
    (warning,), (issue,) = unbuilt(spec)
    assert f"Middleware default/mw: {problem}: no route uses this Middleware" in warning
    assert f"Middleware default/auth: {problem} (used by routes.yaml:" in issue
