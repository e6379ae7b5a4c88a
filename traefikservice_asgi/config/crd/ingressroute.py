"""``IngressRoute`` (Traefik's ``pkg/provider/kubernetes/crd/traefikio/v1alpha1/
ingressroute.go``): routes, each a ``match`` rule compiled with the rule syntax of its
API group (``v2`` for ``traefik.containo.us``, ``v3`` for ``traefik.io``), a priority
(default: the rule's length) and its services.

``parentRefs`` (Traefik 3.7's multi-layer routing) name parent IngressRoutes (``namespace``
defaults to the IngressRoute's own); a route may then leave out ``services`` when it is
itself a parent. A child cannot list ``entryPoints``: Traefik disables it ("non-root
router cannot have Entrypoints configuration"). The tree is built by ``resolve``."""

from __future__ import annotations

from typing import Any

from ...exceptions import RuleError
from ...rules import compile_rule
from .._fields import Reader, show
from .._pacing import checkpoint
from .._yaml import Path
from ..models import IngressRoute, ParentRef, RouteObservability, RouteSpec, ServiceRef
from .middlewareref import middleware_refs
from .serviceref import service_ref

__all__ = ["ingress_route"]


def ingress_route(
    r: Reader,
    spec: Any,
    namespace: str,
    name: str,
    group: str,
    class_annotation: str | None = None,
) -> IngressRoute | None:
    m = r.mapping(
        spec, ("spec",), {"entryPoints", "routes", "tls", "parentRefs", "ingressClassName"}
    )
    if m is None:
        return None
    # Traefik's getIngressClassName: the field when set (even empty), else the
    # deprecated kubernetes.io/ingress.class annotation.
    ingress_class = r.string(m, ("spec",), "ingressClassName")
    if ingress_class is None:
        ingress_class = class_annotation or ""
        if class_annotation:
            r.warn(
                ("metadata", "annotations"),
                "'kubernetes.io/ingress.class' is a deprecated annotation, "
                "please use spec.ingressClassName instead",
            )
    if m.get("tls") is not None:
        r.warn(
            ("spec", "tls"),
            "ignored: TLS is terminated by the ASGI server (uvicorn --ssl-certfile), "
            "not by this package",
        )
    parents = _parent_refs(r, m, namespace)
    entry_points = m.get("entryPoints")
    if entry_points is not None and not (
        isinstance(entry_points, list) and all(isinstance(e, str) for e in entry_points)
    ):
        r.error(("spec", "entryPoints"), f"must be a list of strings, got {show(entry_points)}")
    elif entry_points and parents:
        r.error(
            ("spec", "entryPoints"),
            "a child IngressRoute (with parentRefs) takes its parents' entry points and "
            "cannot list its own (Traefik disables it: non-root router cannot have "
            "Entrypoints configuration)",
        )
    routes: list[RouteSpec] = []
    unrouted: list[ServiceRef] = []
    for i, item in enumerate(r.items(m, ("spec",), "routes", required=True)):
        checkpoint()
        path: Path = ("spec", "routes", i)
        rm = r.mapping(
            item,
            path,
            {"match", "kind", "priority", "services", "syntax", "observability", "middlewares"},
        )
        if rm is None:
            continue
        match = r.string(rm, path, "match", required=True)
        r.string(rm, path, "kind", choices=("Rule",))
        default_syntax = "v2" if group.startswith("traefik.containo.us") else "v3"
        syntax = r.string(rm, path, "syntax", choices=("v3", "v2")) or default_syntax
        priority = r.integer(rm, path, "priority", minimum=0)
        observability = (
            _observability(r, rm["observability"], (*path, "observability"))
            if rm.get("observability") is not None
            else None
        )
        middlewares = middleware_refs(r, rm, path, "middlewares")
        refs = [
            service_ref(r, s, (*path, "services", j), namespace)
            for j, s in enumerate(r.items(rm, path, "services"))
        ]
        if match is None:
            unrouted.extend(x for x in refs if x is not None)
            continue
        if None in refs:
            continue  # reported; a route left without its refused services is no parent
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
                observability=observability,
                middlewares=middlewares,
            )
        )
    return IngressRoute(
        namespace,
        name,
        r.origin(()),
        tuple(routes),
        parent_refs=parents,
        unrouted=tuple(unrouted),
        ingress_class=ingress_class,
    )


def _parent_refs(r: Reader, m: dict[str, Any], namespace: str) -> tuple[ParentRef, ...]:
    refs: list[ParentRef] = []
    for i, item in enumerate(r.items(m, ("spec",), "parentRefs")):
        path: Path = ("spec", "parentRefs", i)
        pm = r.mapping(item, path, {"name", "namespace"})
        if pm is None:
            continue
        name = r.string(pm, path, "name", required=True)
        parent_namespace = r.string(pm, path, "namespace") or namespace
        if name:
            refs.append(ParentRef(name, parent_namespace, r.origin(path)))
    return tuple(refs)


def _observability(r: Reader, value: Any, path: Path) -> RouteObservability | None:
    """``observability`` (Traefik's ``RouterObservabilityConfig``): three optional
    booleans and ``traceVerbosity``; kept on the route, without effect here yet."""
    m = r.mapping(value, path, {"accessLogs", "metrics", "tracing", "traceVerbosity"})
    if m is None:
        return None
    flags: dict[str, bool | None] = {}
    for key in ("accessLogs", "metrics", "tracing"):
        flags[key] = r.boolean(m, path, key, False) if m.get(key) is not None else None
    verbosity = r.string(m, path, "traceVerbosity", choices=("minimal", "detailed"))
    return RouteObservability(
        access_logs=flags["accessLogs"],
        metrics=flags["metrics"],
        tracing=flags["tracing"],
        trace_verbosity="detailed" if verbosity == "detailed" else "minimal",
    )
