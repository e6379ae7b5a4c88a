"""A ``plugin`` middleware's configuration as Traefik's CRD provider hands it to the
plugin (``pkg/provider/kubernetes/crd/kubernetes.go``: ``createPluginMiddleware``,
``loadSecretKeys``, ``getSecretValue``).

The CRD's value is JSON (the API server stores it so) decoded into ``map[string]any``;
it is kept here as canonical JSON text (:func:`dumps`). Every string of it, at any depth
of maps and lists, that starts with ``urn:k8s:secret:`` is replaced by a Secret's value:
``urn:k8s:secret:<name>:<key>`` (exactly five ``:``-separated parts) names the Secret
``<name>`` of the Middleware's namespace and its key ``<key>``. A malformed URN, a
missing Secret or key makes Traefik skip the Middleware; here each is a load error
(:class:`UrnProblem`, turned into the resolver's located error) with Traefik's message.
Map keys are never replaced, only values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .middlewares import Plugin

__all__ = ["SECRET_URN_PREFIX", "UrnProblem", "dumps", "with_plugin_secrets"]

SECRET_URN_PREFIX = "urn:k8s:secret:"

Secrets = Mapping[tuple[str, str], Mapping[str, str]]


class UrnProblem(ValueError):
    """A secret URN Traefik would not resolve; ``field`` is where it is written
    (``plugin.<name>.users[1].secret``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def dumps(value: Any) -> str:
    """``value`` as the JSON text a :class:`Plugin` keeps: keys sorted (Go's
    ``json.Marshal`` of a map), compact; NaN and infinities refused (``ValueError``),
    as JSON has none."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def with_plugin_secrets(spec: Plugin, namespace: str, secrets: Secrets) -> Plugin:
    """``spec`` with each secret URN of its configuration replaced by the value it
    names (``spec`` itself when there is none). Raises :class:`UrnProblem`."""
    if SECRET_URN_PREFIX not in spec.config_json:
        return spec
    resolved = _resolve(spec.config, namespace, secrets, f"plugin.{spec.name}")
    return replace(spec, config_json=dumps(resolved))


def _resolve(value: Any, namespace: str, secrets: Secrets, field: str) -> Any:
    """``loadSecretKeys``: strings, then each item of a list, each value of a map."""
    if isinstance(value, str):
        if not value.startswith(SECRET_URN_PREFIX):
            return value
        return _secret_value(value, namespace, secrets, field)
    if isinstance(value, list):
        return [_resolve(item, namespace, secrets, f"{field}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _resolve(v, namespace, secrets, f"{field}.{k}") for k, v in value.items()}
    return value


def _secret_value(urn: str, namespace: str, secrets: Secrets, field: str) -> str:
    """``getSecretValue``: the Secret's key's value, its data decoded (``string(...)``)."""
    parts = urn.split(":")
    if len(parts) != 5:
        raise UrnProblem(f"malformed secret URN {json.dumps(urn, ensure_ascii=False)}", field)
    name, key = parts[3], parts[4]
    data = secrets.get((namespace, name))
    if data is None:
        raise UrnProblem(f"secret {namespace}/{name} is not found", field)
    if key not in data:
        raise UrnProblem(
            f"key {json.dumps(key, ensure_ascii=False)} not found in secret {namespace}/{name}",
            field,
        )
    return data[key]
