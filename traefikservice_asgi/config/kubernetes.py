"""Kubernetes API objects -> a :class:`~.models.Config`, through the same config layer
as YAML files (every validation and message is the files' one); no I/O.

The watch loop (:mod:`traefikservice_asgi.providers.kubernetes`) keeps the objects of
the :data:`WATCHED` kinds and calls :func:`config_from_objects` after each change. Each
object becomes one YAML document named ``"<Kind> <namespace>/<name>"``, which stands for
the file in every issue. As in Traefik's kubernetesCRD provider, an invalid object is
skipped and reported, and everything else is served (:mod:`.skipping`: the objects named
by the issues of a failed load are left out, or only the routes of an IngressRoute the
issues lie in, and the load is tried again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..exceptions import ConfigIssue
from .loader import load_config_texts
from .models import Config
from .skipping import keep_routes, load_skipping

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

    def load(kept: Mapping[str, Sequence[int] | None]) -> Config:
        texts = ((object_document(keep_routes(current[n], kept[n])), n) for n in sorted(kept))
        return load_config_texts([*files, *texts], **(load_options or {}))

    config, skipped = load_skipping(current, load, lambda issue: issue.file)
    return KubernetesLoad(config, skipped)
