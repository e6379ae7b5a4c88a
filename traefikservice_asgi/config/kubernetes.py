"""Kubernetes API objects -> a :class:`~.models.Config`, through the same config layer
as YAML files (every validation and message is the files' one); no I/O.

The watch loop (:mod:`traefikservice_asgi.providers.kubernetes`) keeps the objects of
the :data:`WATCHED` kinds and calls :func:`config_from_objects` after each change. Each
object becomes one YAML document named ``"<Kind> <namespace>/<name>"``, which stands for
the file in every issue. As in Traefik's kubernetesCRD provider, an invalid object is
skipped and reported, and everything else is served: the objects named by the issues of a
failed load are left out and the load is tried again (bounded by the number of objects
and routes). Where every issue of an IngressRoute lies in some of its routes (a
Middleware that does not exist, a bad service), only those routes are left out, as
Traefik skips a route and serves its siblings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from ..exceptions import ConfigError, ConfigIssue
from .loader import load_config_texts
from .models import Config

__all__ = [
    "WATCHED",
    "ApiKind",
    "KubernetesLoad",
    "config_from_objects",
    "object_document",
    "object_name",
]


@dataclass(frozen=True, slots=True)
class ApiKind:
    """A watched kind: its API path parts, whether the label selector applies (as in
    Traefik, the selector filters the Traefik CRDs only, never Services or endpoints),
    whether it lives in namespaces (a cluster-scoped kind is listed once, whatever the
    provider's namespaces, as Traefik's cluster-scope informers do) and a label selector
    of its own, always sent (Traefik lists Secrets with ``owner!=helm``: Helm's release
    records are never read)."""

    group: str
    version: str
    plural: str
    kind: str
    crd: bool
    namespaced: bool = True
    selector: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return (
            f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        )


WATCHED: tuple[ApiKind, ...] = (
    ApiKind("traefik.io", "v1alpha1", "ingressroutes", "IngressRoute", True),
    ApiKind("traefik.io", "v1alpha1", "traefikservices", "TraefikService", True),
    ApiKind("traefik.io", "v1alpha1", "serverstransports", "ServersTransport", True),
    ApiKind("traefik.io", "v1alpha1", "middlewares", "Middleware", True),
    ApiKind("", "v1", "services", "Service", False),
    ApiKind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", False),
    ApiKind("", "v1", "secrets", "Secret", False, selector="owner!=helm"),
    ApiKind("", "v1", "configmaps", "ConfigMap", False),
    ApiKind("", "v1", "nodes", "Node", False, namespaced=False),  # nodePortLB's addresses
)
"""What the provider lists and watches; deploy/kubernetes/rbac.yaml grants exactly
get/list/watch on these (tests/providers/test_kubernetes.py keeps the two equal).

Traefik 3.7 also watches MiddlewareTCP, IngressRouteTCP, IngressRouteUDP, TLSOption,
TLSStore and ServersTransportTCP; none of them configures an HTTP route here (TCP and
UDP are not served, TLS is the ASGI server's; in files they are skipped with a warning),
so they are neither listed nor granted."""

_KEEP_METADATA = ("name", "namespace", "labels", "annotations")


def object_name(obj: Mapping[str, Any]) -> str:
    """``"Kind namespace/name"``: how an object is named in issues and logs."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}"


def object_document(obj: Mapping[str, Any]) -> str:
    """The object as the YAML document the config layer reads (no status but a Node's,
    no bookkeeping metadata such as resourceVersion or managedFields)."""
    meta = obj.get("metadata") or {}
    # A Node's addresses are its status (what nodePortLB sends to); nothing else's is read.
    drop = ("metadata",) if obj.get("kind") == "Node" else ("metadata", "status")
    data = {k: v for k, v in obj.items() if k not in drop}
    data["metadata"] = {k: meta[k] for k in _KEEP_METADATA if k in meta}
    return yaml.safe_dump(data, sort_keys=False)


@dataclass(frozen=True, slots=True)
class KubernetesLoad:
    """A load's result: the config, and the issues of what was left out of it (objects,
    or routes of an IngressRoute)."""

    config: Config
    skipped: tuple[ConfigIssue, ...]


_ROUTE_PATH = re.compile(r"spec\.routes\[(\d+)\](?=$|[.\[])")


def _failed_routes(obj: Mapping[str, Any], issues: list[ConfigIssue]) -> set[int] | None:
    """The routes of IngressRoute ``obj`` that ``issues`` all lie in, when it keeps one
    without them: Traefik skips a route (its router is not served), not the IngressRoute.
    None: the object is left out whole (another kind, or an issue outside its routes, as
    a bad ``parentRefs``, which Traefik also skips the IngressRoute for)."""
    if obj.get("kind") != "IngressRoute":
        return None
    failed = set()
    for issue in issues:
        match = _ROUTE_PATH.match(issue.path or "")
        if match is None:
            return None
        failed.add(int(match.group(1)))
    routes = (obj.get("spec") or {}).get("routes")
    return failed if isinstance(routes, list) and len(failed) < len(routes) else None


def _in_original(issue: ConfigIssue, indices: list[int] | None) -> ConfigIssue:
    """``issue`` with its route index the one of the object as the API has it, when
    earlier rounds left routes out (``indices``: the original index of each kept one)."""
    match = _ROUTE_PATH.match(issue.path or "") if indices is not None else None
    if match is None or indices is None:
        return issue
    path = f"spec.routes[{indices[int(match.group(1))]}]{(issue.path or '')[match.end() :]}"
    return replace(issue, path=path)


def config_from_objects(
    objects: Iterable[Mapping[str, Any]],
    load_options: Mapping[str, Any] | None = None,
    files: Iterable[tuple[str, str]] = (),
) -> KubernetesLoad:
    """The configuration of ``objects`` (API objects as JSON) and of ``files`` (``(text,
    file)`` pairs read beside the API, never left out), with ``load_options`` as
    :func:`~.loader.load_config`'s keywords. An object an issue names is left out, or
    only the routes the issues lie in when it is an IngressRoute that keeps others, and
    reported in ``skipped``; :class:`ConfigError` only when issues name no object."""
    files = list(files)
    current = {object_name(obj): obj for obj in objects}
    texts = {name: object_document(obj) for name, obj in current.items()}
    kept: dict[str, list[int]] = {}  # an IngressRoute trimmed: its routes' first indices
    skipped: list[ConfigIssue] = []
    options = dict(load_options or {})
    routes = sum(len((o.get("spec") or {}).get("routes") or ()) for o in current.values())
    for _ in range(len(texts) + routes + 1):
        try:
            documents = [*files, *((t, n) for n, t in sorted(texts.items()))]
            config = load_config_texts(documents, **options)
        except ConfigError as exc:
            bad: dict[str, list[ConfigIssue]] = {}
            for issue in exc.issues:
                if issue.file in texts:
                    bad.setdefault(issue.file, []).append(issue)
            if not bad:
                raise
            for name, issues in bad.items():
                skipped.extend(_in_original(issue, kept.get(name)) for issue in issues)
                obj = current[name]
                failed = _failed_routes(obj, issues)
                if failed is None:
                    del current[name], texts[name]
                    continue
                spec = obj["spec"]
                indices = kept.get(name, list(range(len(spec["routes"]))))
                keep = [i for i in range(len(spec["routes"])) if i not in failed]
                kept[name] = [indices[i] for i in keep]
                current[name] = {
                    **obj,
                    "spec": {**spec, "routes": [spec["routes"][i] for i in keep]},
                }
                texts[name] = object_document(current[name])
            continue
        return KubernetesLoad(config, tuple(skipped))
    raise AssertionError("unreachable: every round leaves something out")  # pragma: no cover
