"""``IngressRoute`` (Traefik's ``pkg/provider/kubernetes/crd/traefikio/v1alpha1/
ingressroute.go``): routes, each a ``match`` rule compiled with the rule syntax of its
API group (``v2`` for ``traefik.containo.us``, ``v3`` for ``traefik.io``), a priority
(default: the rule's length) and its services."""

from __future__ import annotations

from typing import Any

from ...exceptions import RuleError
from ...rules import compile_rule
from .._fields import Reader, show
from .._yaml import Path
from ..models import IngressRoute, RouteSpec, ServiceRef
from .serviceref import service_ref

__all__ = ["ingress_route"]


def ingress_route(
    r: Reader, spec: Any, namespace: str, name: str, group: str
) -> IngressRoute | None:
    m = r.mapping(spec, ("spec",), {"entryPoints", "routes", "tls", "parentRefs"})
    if m is None:
        return None
    if m.get("tls") is not None:
        r.warn(
            ("spec", "tls"),
            "ignored: TLS is terminated by the ASGI server (uvicorn --ssl-certfile), "
            "not by this package",
        )
    if m.get("parentRefs") is not None:
        r.error(
            ("spec", "parentRefs"),
            "not supported by traefikservice-asgi: parentRefs are not implemented",
        )
    entry_points = m.get("entryPoints")
    if entry_points is not None and not (
        isinstance(entry_points, list) and all(isinstance(e, str) for e in entry_points)
    ):
        r.error(("spec", "entryPoints"), f"must be a list of strings, got {show(entry_points)}")
    routes: list[RouteSpec] = []
    unrouted: list[ServiceRef] = []
    for i, item in enumerate(r.items(m, ("spec",), "routes", required=True)):
        path: Path = ("spec", "routes", i)
        rm = r.mapping(
            item,
            path,
            {"match", "kind", "priority", "services", "syntax"},
            {
                "middlewares": "Traefik middlewares are not implemented",
                "observability": "observability options are not implemented",
            },
        )
        if rm is None:
            continue
        match = r.string(rm, path, "match", required=True)
        r.string(rm, path, "kind", choices=("Rule",))
        default_syntax = "v2" if group.startswith("traefik.containo.us") else "v3"
        syntax = r.string(rm, path, "syntax", choices=("v3", "v2")) or default_syntax
        priority = r.integer(rm, path, "priority", minimum=0)
        refs = [
            service_ref(r, s, (*path, "services", j), namespace)
            for j, s in enumerate(r.items(rm, path, "services", required=True))
        ]
        if "services" in rm and isinstance(rm["services"], list) and not rm["services"]:
            r.error((*path, "services"), "must list at least one service")
        if match is None:
            unrouted.extend(x for x in refs if x is not None)
            continue
        try:
            rule = compile_rule(match, syntax=syntax)  # type: ignore[arg-type]
        except RuleError as exc:
            r.error((*path, "match"), f"invalid rule: {exc}")
            unrouted.extend(x for x in refs if x is not None)
            continue
        routes.append(
            RouteSpec(
                rule=rule,
                priority=priority or rule.priority,
                services=tuple(x for x in refs if x is not None),
                origin=r.origin(path),
            )
        )
    return IngressRoute(namespace, name, r.origin(()), tuple(routes), tuple(unrouted))
