"""From YAML documents to checked resources, collecting every problem on the way.

:func:`parse_document` dispatches one document by ``apiVersion`` and ``kind`` to its
reader in :mod:`.crd` and adds the result to a :class:`Resources` collection.

Traefik's own CRDs (``traefik.io/v1alpha1`` and the older ``traefik.containo.us``) are
read strictly: an unknown field is an error (a typo such as ``wieght`` would otherwise
silently mean weight 1), and a field Traefik knows but this package does not implement
is an error naming it, so no behaviour is dropped in silence. Traefik kinds that add no
HTTP route here (``TLSOption``, ``MiddlewareTCP``...) are skipped with a warning. Core
Kubernetes resources are read leniently (only the fields used are checked), and other
kinds are skipped. A resource in both API groups is the ``traefik.io`` one, as in
Traefik.

An ``apiVersion`` of Traefik's groups other than ``v1alpha1`` (``traefik.io/v1``) is an
error naming the known versions, and a kind that is a near miss of one read here
(``TraefikServce``, ``Servce``) gets a "did you mean": neither is skipped in silence.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigIssue, ConfigWarning
from ._fields import Reader, show
from ._yaml import Document
from .crd.core import endpoint_slice, endpoints, key_values, kube_service, node
from .crd.ingressroute import ingress_route
from .crd.middleware import middleware
from .crd.serverstransport import servers_transport
from .crd.traefikservice import traefik_service
from .middlewares import MiddlewareResource
from .models import (
    EndpointSet,
    IngressRoute,
    KubeService,
    NodeAddresses,
    Origin,
    ServersTransport,
    TraefikService,
)

__all__ = ["TRAEFIK_GROUPS", "Resources", "parse_document"]

logger = logging.getLogger("traefikservice_asgi.config")

ANNOTATION_INGRESS_CLASS = "kubernetes.io/ingress.class"
TRAEFIK_GROUPS = ("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
_TRAEFIK_KINDS = ("IngressRoute", "TraefikService", "ServersTransport", "Middleware")
_CORE = (
    ("v1", "Service"),
    ("v1", "Endpoints"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "Node"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
)
"""The core kinds read (IngressClass documents are not among them: Traefik's CRD
provider selects IngressRoutes by class name alone, spec.ingressClassName or the
annotation)."""

# Traefik kinds that configure things this package does not serve. They are skipped
# with a warning: they add listeners or objects, they do not change an HTTP route here.
# (A route *using* one, e.g. `middlewares`, is an error instead.)
_OTHER_TRAEFIK_KINDS = {
    "MiddlewareTCP": "TCP is not served",
    "IngressRouteTCP": "TCP routes are not served",
    "IngressRouteUDP": "UDP routes are not served",
    "TLSOption": "TLS is terminated by the ASGI server, not by this package",
    "TLSStore": "TLS is terminated by the ASGI server, not by this package",
    "ServersTransportTCP": "TCP is not served",
}


@dataclass
class Resources:
    """Everything parsed from every file of one load, plus the problems found."""

    ingress_routes: list[IngressRoute] = field(default_factory=list)
    traefik_services: dict[tuple[str, str], TraefikService] = field(default_factory=dict)
    services: dict[tuple[str, str], KubeService] = field(default_factory=dict)
    endpoints: list[EndpointSet] = field(default_factory=list)
    transports: dict[tuple[str, str], ServersTransport] = field(default_factory=dict)
    middlewares: dict[tuple[str, str], MiddlewareResource] = field(default_factory=dict)
    # Secret and ConfigMap contents, (namespace, name) -> key -> text (Secrets decoded)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # a Secret's `type` (kubernetes.io/basic-auth is read as one user, as in Traefik)
    secret_types: dict[tuple[str, str], str] = field(default_factory=dict)
    nodes: list[NodeAddresses] = field(default_factory=list)  # for nodePortLB
    issues: list[ConfigIssue] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    # (kind, namespace, name) -> (API group, origin) of the Traefik resource kept
    groups: dict[tuple[str, str, str], tuple[str, Origin]] = field(default_factory=dict)


def _metadata(doc: Document, file: str | None, kind: str, out: Resources) -> tuple[str, str] | None:
    meta = doc.data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        out.issues.append(
            ConfigIssue(
                "metadata.name: required field is missing", file, doc.line_of(("metadata",)), kind
            )
        )
        return None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if ns is not None and (not isinstance(ns, str) or not ns):
        out.issues.append(
            ConfigIssue(
                f"metadata.namespace: must be a string, got {show(ns)}",
                file,
                doc.line_of(("metadata", "namespace")),
                f"{kind} {name}",
            )
        )
        return None
    return ns or "default", name


_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}


def _twin(r: Reader, out: Resources, api: str, kind: str, namespace: str, name: str) -> str | None:
    """A Traefik resource whose kind, namespace and name were seen before.

    In the same API group that is an error (Kubernetes cannot hold both). Across the two
    groups it is what a cluster migrating from ``traefik.containo.us`` holds, and Traefik
    keeps the ``traefik.io`` one (v2 reads both groups and lets ``traefik.io`` win, v3
    reads only ``traefik.io``): "keep" the first, "replace" it with this one, or None
    when there is no twin (or an error was reported)."""
    key = (kind, namespace, name)
    seen = out.groups.get(key)
    here = r.origin(())
    if seen is None:
        out.groups[key] = (api, here)
        return None
    first_api, first = seen
    if first_api == api:
        r.error((), f"defined twice (first at {first.file}:{first.line})")
        return "keep"
    winner = "traefik.io/v1alpha1"
    r.warn(
        (),
        f"defined in both {first_api} ({first.file}:{first.line}) and {api}; "
        f"the {winner} one is used, as in Traefik",
    )
    if api != winner:
        return "keep"
    out.groups[key] = (api, here)
    return "replace"


def _class_annotation(data: dict[str, Any]) -> str | None:
    meta = data.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(ANNOTATION_INGRESS_CLASS) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and value else None


def parse_document(doc: Document, file: str | None, out: Resources) -> None:
    """Add the resource in ``doc`` to ``out`` (or its problems to ``out.issues``)."""
    data = doc.data
    if not isinstance(data, dict):
        out.issues.append(
            ConfigIssue(f"a document must be a mapping, got {show(data)}", file, doc.line)
        )
        return
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        out.issues.append(ConfigIssue("a document needs apiVersion and kind", file, doc.line))
        return
    if api not in TRAEFIK_GROUPS and api.split("/")[0] in ("traefik.io", "traefik.containo.us"):
        out.issues.append(
            ConfigIssue(
                f'unknown apiVersion "{api}": Traefik\'s resources are '
                f"{' and '.join(TRAEFIK_GROUPS)}",
                file,
                doc.line_of(("apiVersion",)),
                kind,
                "apiVersion",
            )
        )
        return
    if api in TRAEFIK_GROUPS:
        if kind in _OTHER_TRAEFIK_KINDS:
            out.warnings.append(
                ConfigWarning(
                    f"skipped, not supported by traefikservice-asgi: {_OTHER_TRAEFIK_KINDS[kind]}",
                    file,
                    doc.line,
                    kind,
                )
            )
            return
        if kind not in _TRAEFIK_KINDS:
            close = difflib.get_close_matches(kind, [*_TRAEFIK_KINDS, *_OTHER_TRAEFIK_KINDS], 1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            known = ", ".join(_TRAEFIK_KINDS)
            out.issues.append(
                ConfigIssue(
                    f'unknown kind "{kind}" in {api}{hint}; the kinds read are {known}',
                    file,
                    doc.line_of(("kind",)),
                    None,
                    "kind",
                )
            )
            return
    elif (api, kind) not in _CORE:
        close = difflib.get_close_matches(kind, [k for a, k in _CORE if a == api], 1, 0.8)
        if close:  # `Servce` in v1: a typo, not one of the many kinds skipped on purpose
            out.warnings.append(
                ConfigWarning(
                    f'skipped: kind "{kind}" is not read (did you mean "{close[0]}"?)',
                    file,
                    doc.line_of(("kind",)),
                    None,
                    "kind",
                )
            )
        logger.debug("%s:%d: skipping %s %s (not used for routing)", file, doc.line, api, kind)
        return
    ident = _metadata(doc, file, kind, out)
    if ident is None:
        return
    namespace, name = ident
    if kind == "Node":  # cluster-scoped: its namespace (default) means nothing
        out.nodes.append(
            node(Reader(doc, file, f"Node {name}", out.issues, out.warnings), data, name)
        )
        return
    r = Reader(doc, file, f"{kind} {namespace}/{name}", out.issues, out.warnings)
    if api in TRAEFIK_GROUPS:
        for key in data:
            if key not in _TOP:
                r.error((key,), f"unknown field {show(str(key))}")
        if "spec" not in data:
            r.error(("spec",), "required field is missing")
            return
        twin = _twin(r, out, api, kind, namespace, name)
        if twin == "keep":
            return
        if kind == "TraefikService":
            ts = traefik_service(r, data["spec"], namespace, name)
            if ts is not None:
                out.traefik_services[(namespace, name)] = ts
        elif kind == "Middleware":
            mw = middleware(r, data["spec"], namespace, name)
            if mw is not None:
                out.middlewares[(namespace, name)] = mw
        elif kind == "ServersTransport":
            st = servers_transport(r, data["spec"], namespace, name)
            if st is not None:
                out.transports[(namespace, name)] = st
        else:
            ir = ingress_route(r, data["spec"], namespace, name, api, _class_annotation(data))
            if ir is not None:
                if twin == "replace":
                    out.ingress_routes[:] = [
                        route
                        for route in out.ingress_routes
                        if (route.namespace, route.name) != (namespace, name)
                    ]
                out.ingress_routes.append(ir)
    elif kind == "Service":
        svc = kube_service(r, data.get("spec"), namespace, name)
        if svc is not None:
            out.services[(namespace, name)] = svc
    elif kind == "Endpoints":
        out.endpoints.extend(endpoints(r, data, namespace, name))
    elif kind in ("Secret", "ConfigMap"):
        target = out.secrets if kind == "Secret" else out.config_maps
        target[(namespace, name)] = key_values(r, data, secret=kind == "Secret")
        if kind == "Secret" and isinstance(data.get("type"), str):
            out.secret_types[(namespace, name)] = data["type"]
    else:
        out.endpoints.extend(endpoint_slice(r, data, namespace))
