"""Translate our Kubernetes CRD manifests into a Traefik FILE-provider dynamic configuration.

The oracle (the real Traefik binary) cannot read Kubernetes objects without a cluster, so the
conformance tests feed it the configuration its Kubernetes CRD provider would have produced.
This module re-does that provider's work on the raw YAML documents, following Traefik's
``pkg/provider/kubernetes/crd/kubernetes_http.go`` (v3.7) step by step, so that every name
Traefik derives from them (WRR child names, hence sticky cookie values) is the same one our
gateway derives. It deliberately shares no code with ``traefikservice_asgi``: the oracle must
not inherit our package's bugs.

What it reads (other kinds are skipped): ``IngressRoute``, ``TraefikService`` and ``Middleware`` of
``traefik.io/v1alpha1`` and ``traefik.containo.us/v1alpha1`` (the same ns/name in both: the
``traefik.io`` one wins), ``Service``, ``Endpoints`` and ``EndpointSlice``.

Naming (as the CRD provider):

* Kubernetes Service child: ``Normalize(ns-name-port)`` (port as written: number or name),
  e.g. ``default-app-v1-80``; a ``loadBalancer`` whose server is ``backends["ns/name:port"]``
  (or, if absent, the Service's Endpoints/EndpointSlices).
* TraefikService: ``Normalize(ns-name)``, e.g. ``default-wrr``.
* Route: router ``Normalize(ns-ingress-<first 20 hex of sha256(match)>)``. Its service: a
  single ``kind: TraefikService`` -> that service; a single Kubernetes Service -> a
  ``loadBalancer`` under the router's name; two or more -> an implicit ``weighted`` service
  under the router's name (weights default 1, no sticky).

``ServersTransport`` -> ``serversTransports.<Normalize(ns-name)>`` (timeouts, idle limits,
``serverName``, ``insecureSkipVerify``; CA and client certificates are not translated).
``healthCheck`` of a Service reference -> the load balancer's ``healthCheck`` (only on an
ExternalName Service, as the CRD provider requires). A ``traefik.containo.us`` route without
``syntax`` gets ``ruleSyntax: v2`` (Traefik 2's rules, as our gateway reads that group).
``Middleware`` -> ``middlewares.<Normalize(ns-name)>`` with the same spec (a ``chain``'s
references resolved to those names; an empty ``encodedCharacters`` or an empty map of
``headers``, which the file provider refuses, spelt as it takes them); a route's or a Service reference's ``middlewares`` ->
the router's or the service's ``middlewares``, resolved as ``resolveReference`` does
(namespace defaulted to the parent's: the IngressRoute's, or the Service's own for a
Service reference; another namespace, or ``name@kubernetescrd``, only with
``allow_cross_namespace``, else TranslationError).
Ignored: ``entryPoints`` (everything goes on ``web``), ``tls``.

``parentRefs`` (multi-layer routing, ``resolveParentRouterNames``): every route of a child
IngressRoute gets ``parentRefs``: the router names of *every* route of each parent
IngressRoute (``namespace`` defaults to the child's), and no ``entryPoints`` unless the child
lists some (Traefik then disables it: a non-root router cannot have entry points). A parent
in another namespace without ``allow_cross_namespace``, or a missing parent, makes the whole
child IngressRoute invalid (TranslationError), as the provider skips it.

Sticky cookies without a ``name`` get a default name hashed from the provider-qualified
service name: Traefik's file provider hashes ``<service>@file`` where our gateway emulates
``<service>@kubernetescrd``; :func:`default_cookie_renames` maps one to the other.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CRD_GROUPS",
    "Translation",
    "TranslationError",
    "cookie_name_for",
    "default_cookie_renames",
    "gateway_cookie_name",
    "load_documents",
    "normalize",
    "route_key",
    "traefik_cookie_name",
    "translate",
    "translate_all",
]

CRD_GROUPS = ("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
_PREFERRED_GROUP = "traefik.io/v1alpha1"
_PROVIDER = "kubernetescrd"

Document = dict[str, Any]


class TranslationError(ValueError):
    """A manifest cannot be expressed as file-provider configuration (or is invalid)."""


# -- names --------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """Traefik's ``provider.Normalize``: split on runs of non-letter/non-number, join with ``-``.

    Letters and numbers are Unicode categories L* and N* (Go's ``unicode.IsLetter`` /
    ``unicode.IsNumber``).
    """
    parts: list[str] = []
    current: list[str] = []
    for char in name:
        if unicodedata.category(char)[0] in "LN":
            current.append(char)
        elif current:
            parts.append("".join(current))
            current = []
    if current:
        parts.append("".join(current))
    return "-".join(parts)


def route_key(namespace: str, ingress_name: str, match: str) -> str:
    """Router name of an IngressRoute route (``makeServiceKey`` + ``makeID`` + Normalize)."""
    digest = hashlib.sha256(match.encode()).hexdigest()[:20]
    return normalize(_make_id(namespace, f"{ingress_name}-{digest}"))


def cookie_name_for(service_fullname: str) -> str:
    """Traefik's default sticky cookie name for a provider-qualified service name.

    ``"_" + hex(sha1("_TRAEFIK_BACKEND_" + service_fullname))[:5]``, e.g.
    ``cookie_name_for("default-app@kubernetescrd") == "_ee2b3"``.
    """
    digest = hashlib.sha1(f"_TRAEFIK_BACKEND_{service_fullname}".encode()).hexdigest()
    return "_" + digest[:5]


def traefik_cookie_name(service: str) -> str:
    """Default cookie name Traefik (file provider) uses for ``service``."""
    return cookie_name_for(f"{service}@file")


def gateway_cookie_name(service: str) -> str:
    """Default cookie name our gateway (emulating the CRD provider) uses for ``service``."""
    return cookie_name_for(f"{service}@{_PROVIDER}")


def default_cookie_renames(dynamic: Mapping[str, Any]) -> dict[str, str]:
    """Map Traefik's default sticky cookie names to our gateway's, for every sticky service
    of ``dynamic`` whose cookie has no explicit ``name``."""
    renames: dict[str, str] = {}
    for name, service in (dynamic.get("http", {}).get("services") or {}).items():
        for kind in ("weighted", "loadBalancer"):
            cookie = ((service.get(kind) or {}).get("sticky") or {}).get("cookie")
            if cookie is not None and not cookie.get("name"):
                renames[traefik_cookie_name(name)] = gateway_cookie_name(name)
    return renames


def _make_id(namespace: str, name: str) -> str:
    return f"{namespace}-{name}" if namespace else name


# -- input --------------------------------------------------------------------------------


def load_documents(paths: Iterable[str | Path]) -> list[Document]:
    """All YAML documents of ``paths`` (multi-document files; empty documents dropped)."""
    documents: list[Document] = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if document is None:
                    continue
                if not isinstance(document, dict):
                    raise TranslationError(f"{path}: a YAML document is not a mapping")
                if document.get("kind") == "List":
                    documents.extend(item for item in document.get("items") or [] if item)
                else:
                    documents.append(document)
    return documents


# -- output -------------------------------------------------------------------------------


@dataclass
class Translation:
    """The file-provider configuration, plus what could not be translated (non-strict)."""

    dynamic: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    """Resources or routes left out because they are invalid (``strict=False`` only); Traefik
    leaves them out too, and their routers answer 404."""

    @property
    def cookie_renames(self) -> dict[str, str]:
        return default_cookie_renames(self.dynamic)


def translate(
    sources: Iterable[str | Path] | Iterable[Document],
    backends: Mapping[str, str | Sequence[str]],
    *,
    entry_point: str = "web",
    allow_cross_namespace: bool = False,
) -> dict[str, Any]:
    """File-provider dynamic configuration for ``sources`` (YAML paths or parsed documents).

    ``backends`` maps ``"ns/name:port"`` (port number or port name, as a route or
    TraefikService writes it) to a server URL (or a list of URLs: several servers), e.g.
    ``{"default/app-v1:80": "http://127.0.0.1:41234"}``. Raises TranslationError on anything
    invalid; see :func:`translate_all` for Traefik's skip-and-continue behaviour.
    """
    return translate_all(
        sources,
        backends,
        entry_point=entry_point,
        allow_cross_namespace=allow_cross_namespace,
        strict=True,
    ).dynamic


def translate_all(
    sources: Iterable[str | Path] | Iterable[Document],
    backends: Mapping[str, str | Sequence[str]],
    *,
    entry_point: str = "web",
    allow_cross_namespace: bool = False,
    strict: bool = True,
) -> Translation:
    """Like :func:`translate`; with ``strict=False`` an invalid TraefikService or route is
    left out (as Traefik's CRD provider does) and reported in ``Translation.skipped``."""
    items = list(sources)
    documents: list[Document] = (
        load_documents(items)  # type: ignore[arg-type]
        if all(isinstance(item, (str, Path)) for item in items)
        else [item for item in items if isinstance(item, dict)]
    )
    builder = _Builder(_Cluster(documents), backends, entry_point, allow_cross_namespace)
    skipped: list[str] = []
    for ingress in builder.cluster.ingress_routes:
        for index, route in enumerate(ingress["spec"].get("routes") or []):
            where = f"IngressRoute {_ns(ingress)}/{_name(ingress)} routes[{index}]"
            try:
                builder.build_route(ingress, route)
            except TranslationError as exc:
                if strict:
                    raise TranslationError(f"{where}: {exc}") from None
                skipped.append(f"{where}: {exc}")
    for tservice in builder.cluster.traefik_services:
        where = f"TraefikService {_ns(tservice)}/{_name(tservice)}"
        try:
            builder.build_traefik_service(tservice)
        except TranslationError as exc:
            if strict:
                raise TranslationError(f"{where}: {exc}") from None
            skipped.append(f"{where}: {exc}")
    for middleware in builder.cluster.middlewares:
        where = f"Middleware {_ns(middleware)}/{_name(middleware)}"
        try:
            builder.build_middleware(middleware)
        except TranslationError as exc:
            if strict:
                raise TranslationError(f"{where}: {exc}") from None
            skipped.append(f"{where}: {exc}")
    dynamic: dict[str, Any] = {"http": {"routers": builder.routers, "services": builder.services}}
    if builder.middlewares:
        dynamic["http"]["middlewares"] = builder.middlewares
    if builder.transports:
        dynamic["http"]["serversTransports"] = builder.transports
    return Translation(dynamic=dynamic, skipped=skipped)


# -- the cluster as read from the manifests -----------------------------------------------


def _ns(document: Document) -> str:
    return str((document.get("metadata") or {}).get("namespace") or "default")


def _name(document: Document) -> str:
    metadata = document.get("metadata") or {}
    return str(metadata.get("name") or metadata.get("generateName") or "")


class _Cluster:
    """The objects of the manifests, indexed as the Kubernetes client would serve them."""

    def __init__(self, documents: list[Document]) -> None:
        crds: dict[tuple[str, str, str], Document] = {}
        self.services: dict[tuple[str, str], Document] = {}
        self.endpoints: dict[tuple[str, str], Document] = {}
        self.endpoint_slices: dict[tuple[str, str], list[Document]] = {}
        self.transports: dict[tuple[str, str], Document] = {}
        self.secrets: dict[tuple[str, str], Document] = {}
        for document in documents:
            api, kind = document.get("apiVersion"), document.get("kind")
            key = (_ns(document), _name(document))
            if api in CRD_GROUPS and kind in ("IngressRoute", "TraefikService", "Middleware"):
                existing = crds.get((kind, *key))
                if existing is None or api == _PREFERRED_GROUP:
                    crds[(kind, *key)] = document
                if not isinstance(document.get("spec"), dict):
                    raise TranslationError(f"{kind} {key[0]}/{key[1]}: spec is missing")
            elif api in CRD_GROUPS and kind == "ServersTransport":
                self.transports[key] = document
            elif api == "v1" and kind == "Service":
                self.services[key] = document
            elif api == "v1" and kind == "Secret":
                self.secrets[key] = document
            elif api == "v1" and kind == "Endpoints":
                self.endpoints[key] = document
            elif api == "discovery.k8s.io/v1" and kind == "EndpointSlice":
                labels = (document.get("metadata") or {}).get("labels") or {}
                owner = labels.get("kubernetes.io/service-name")
                if owner:
                    self.endpoint_slices.setdefault((key[0], owner), []).append(document)
        self.ingress_routes = [d for (k, _, _), d in crds.items() if k == "IngressRoute"]
        self.traefik_services = [d for (k, _, _), d in crds.items() if k == "TraefikService"]
        self.middlewares = [d for (k, _, _), d in crds.items() if k == "Middleware"]

    def service_port(self, namespace: str, name: str, port: int | str) -> dict[str, Any] | None:
        """The Service's port entry matching ``port`` (number or name); None if unknown."""
        service = self.services.get((namespace, name))
        if service is None:
            return None
        for entry in (service.get("spec") or {}).get("ports") or []:
            if isinstance(port, int) and entry.get("port") == port:
                return dict(entry)
            if isinstance(port, str) and entry.get("name") == port:
                return dict(entry)
        raise TranslationError(f"service port not found: {namespace}/{name}:{port}")

    def endpoint_urls(self, namespace: str, name: str, port: dict[str, Any]) -> list[str]:
        """``http://ip:port`` of the Service's ready endpoints for ``port`` (by port name)."""
        port_name = port.get("name") or ""
        urls: list[str] = []
        slices = self.endpoint_slices.get((namespace, name))
        if slices:
            for slice_ in slices:
                number = next(
                    (
                        p.get("port")
                        for p in slice_.get("ports") or []
                        if (p.get("name") or "") == port_name
                    ),
                    None,
                )
                if number is None:
                    continue
                for endpoint in slice_.get("endpoints") or []:
                    if (endpoint.get("conditions") or {}).get("serving") is False:
                        continue
                    urls.extend(_url(ip, number) for ip in endpoint.get("addresses") or [])
            return list(dict.fromkeys(urls))
        endpoints = self.endpoints.get((namespace, name))
        for subset in (endpoints or {}).get("subsets") or []:
            number = next(
                (
                    p.get("port")
                    for p in subset.get("ports") or []
                    if (p.get("name") or "") == port_name
                ),
                None,
            )
            if number is None:
                continue
            urls.extend(_url(a.get("ip"), number) for a in subset.get("addresses") or [])
        return urls


def _url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


# -- the builder (kubernetes_http.go) -----------------------------------------------------


class _Builder:
    def __init__(
        self,
        cluster: _Cluster,
        backends: Mapping[str, str | Sequence[str]],
        entry_point: str,
        allow_cross_namespace: bool,
    ) -> None:
        self.cluster = cluster
        self.backends = backends
        self.entry_point = entry_point
        self.allow_cross_namespace = allow_cross_namespace
        self.routers: dict[str, Any] = {}
        self.services: dict[str, Any] = {}
        self.transports: dict[str, Any] = {}
        self.middlewares: dict[str, Any] = {}

    # routes

    def build_route(self, ingress: Document, route: dict[str, Any]) -> None:
        namespace, ingress_name = _ns(ingress), _name(ingress)
        kind = route.get("kind") or "Rule"
        if kind != "Rule":
            raise TranslationError(f'unsupported match kind {kind!r}: only "Rule" is supported')
        match = route.get("match")
        if not match:
            raise TranslationError("empty match rule")
        key = route_key(namespace, ingress_name, match)
        services = route.get("services") or []
        service_name: str | None = key
        pending: dict[str, Any] = {}
        if len(services) > 1:
            pending[key] = self._weighted(namespace, {"services": services}, pending)
        elif len(services) == 1:
            full_name, servers_lb = self._name_and_service(namespace, services[0])
            if servers_lb is not None:
                pending[key] = servers_lb
            else:
                service_name = full_name
        else:
            service_name = None
        parents = self._parent_router_names(ingress)
        router: dict[str, Any] = {"rule": match}
        if not parents or ingress["spec"].get("entryPoints"):
            router["entryPoints"] = [self.entry_point]
        if parents:
            router["parentRefs"] = parents
        if route.get("priority") is not None:
            router["priority"] = int(route["priority"])
        if route.get("syntax"):
            router["ruleSyntax"] = route["syntax"]
        elif ingress.get("apiVersion") != _PREFERRED_GROUP:
            # traefik.containo.us is Traefik 2's group, read with Traefik 2's rule syntax
            # (as our gateway does; Traefik 3 no longer reads it at all).
            router["ruleSyntax"] = "v2"
        if service_name is not None:
            router["service"] = service_name
        if route.get("middlewares"):
            router["middlewares"] = self.middleware_keys(namespace, route["middlewares"])
        self.services.update(pending)
        self.routers[key] = router

    def _parent_router_names(self, ingress: Document) -> list[str]:
        namespace = _ns(ingress)
        names: list[str] = []
        for ref in ingress["spec"].get("parentRefs") or []:
            parent_namespace = str(ref.get("namespace") or namespace)
            parent_name = str(ref.get("name") or "")
            if not self.allow_cross_namespace and parent_namespace != namespace:
                raise TranslationError(
                    f"cross-namespace reference to parent IngressRoute "
                    f"{parent_namespace}/{parent_name} not allowed"
                )
            parent = next(
                (
                    d
                    for d in self.cluster.ingress_routes
                    if _ns(d) == parent_namespace and _name(d) == parent_name
                ),
                None,
            )
            if parent is None:
                raise TranslationError(
                    f"parent IngressRoute {parent_namespace}/{parent_name} does not exist"
                )
            for route in parent["spec"].get("routes") or []:
                names.append(route_key(parent_namespace, _name(parent), str(route.get("match"))))
        return names

    # TraefikServices

    def build_traefik_service(self, tservice: Document) -> None:
        namespace, spec = _ns(tservice), tservice["spec"]
        service_id = normalize(_make_id(namespace, _name(tservice)))
        pending: dict[str, Any] = {}
        if spec.get("weighted") is not None:
            pending[service_id] = self._weighted(namespace, spec["weighted"], pending)
        elif spec.get("mirroring") is not None:
            pending[service_id] = self._mirroring(namespace, spec["mirroring"], pending)
        elif spec.get("highestRandomWeight") is not None:
            pending[service_id] = self._hrw(namespace, spec["highestRandomWeight"], pending)
        elif spec.get("failover") is not None:
            pending[service_id] = self._failover(namespace, spec["failover"], pending)
        else:
            raise TranslationError("unspecified service type")
        self.services.update(pending)

    def _weighted(
        self, namespace: str, weighted: dict[str, Any], pending: dict[str, Any]
    ) -> dict[str, Any]:
        children = []
        for child in weighted.get("services") or []:
            full_name, servers_lb = self._name_and_service(namespace, child)
            if servers_lb is not None:
                pending[full_name] = servers_lb
            weight = child.get("weight")
            children.append({"name": full_name, "weight": 1 if weight is None else int(weight)})
        config: dict[str, Any] = {"services": children}
        if sticky := _sticky(weighted):
            config["sticky"] = sticky
        return {"weighted": config}

    def _mirroring(
        self, namespace: str, mirroring: dict[str, Any], pending: dict[str, Any]
    ) -> dict[str, Any]:
        main, servers_lb = self._name_and_service(namespace, mirroring)
        if servers_lb is not None:
            pending[main] = servers_lb
        mirrors = []
        for mirror in mirroring.get("mirrors") or []:
            name, mirror_lb = self._name_and_service(namespace, mirror)
            if mirror_lb is not None:
                pending[name] = mirror_lb
            mirrors.append({"name": name, "percent": int(mirror.get("percent") or 0)})
        config: dict[str, Any] = {"service": main, "mirrors": mirrors}
        if mirroring.get("mirrorBody") is not None:
            config["mirrorBody"] = bool(mirroring["mirrorBody"])
        if mirroring.get("maxBodySize") is not None:
            config["maxBodySize"] = int(mirroring["maxBodySize"])
        return {"mirroring": config}

    def _hrw(self, namespace: str, hrw: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
        children = []
        for child in hrw.get("services") or []:
            full_name, servers_lb = self._name_and_service(namespace, child)
            if servers_lb is not None:
                pending[full_name] = servers_lb
            weight = child.get("weight")
            children.append({"name": full_name, "weight": 1 if weight is None else int(weight)})
        return {"highestRandomWeight": {"services": children}}

    def _failover(
        self, namespace: str, failover: dict[str, Any], pending: dict[str, Any]
    ) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for field_name in ("service", "fallback"):
            spec = failover.get(field_name)
            if not isinstance(spec, dict):
                raise TranslationError(f"failover.{field_name} is missing")
            name, servers_lb = self._name_and_service(namespace, spec)
            if servers_lb is not None:
                pending[name] = servers_lb
            config[field_name] = name
        errors = failover.get("errors")
        if errors:
            config["errors"] = {k: v for k, v in errors.items() if v is not None}
        return {"failover": config}

    # one LoadBalancerSpec (nameAndService)

    def _name_and_service(
        self, parent_namespace: str, spec: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None]:
        name = spec.get("name")
        if not name:
            raise TranslationError("service name is missing")
        name = str(name)
        namespace = str(spec.get("namespace") or parent_namespace)
        if "@" not in name and not self.allow_cross_namespace and namespace != parent_namespace:
            raise TranslationError(
                f"service {namespace}/{name} not in the parent resource namespace "
                f"{parent_namespace}"
            )
        kind = spec.get("kind") or "Service"
        if kind == "Service":
            port = spec.get("port")
            if port is None or port == "" or port == 0:
                raise TranslationError(f"service {namespace}/{name}: port not defined")
            return normalize(f"{namespace}-{name}-{port}"), self._servers_lb(namespace, name, spec)
        if kind == "TraefikService":
            if "@" not in name:
                return normalize(f"{namespace}-{name}"), None
            base, _, provider = name.rpartition("@")
            if provider == _PROVIDER:
                return normalize(f"{namespace}-{base}"), None
            return f"{normalize(base)}@{provider}", None
        raise TranslationError(f"unsupported service kind {kind}")

    def _servers_lb(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        raw_port = spec["port"]
        port: int | str = raw_port if isinstance(raw_port, int) else str(raw_port)
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if spec.get("nativeLB") is True:
            urls = [self._native_url(namespace, name, port)]
        else:
            urls = self._urls(namespace, name, port)
        if spec.get("scheme") == "h2c":  # parseServiceProtocol: the scheme of every server URL
            urls = ["h2c" + url[4:] if url.startswith("http://") else url for url in urls]
        lb: dict[str, Any] = {
            "servers": [{"url": url} for url in urls],
            "passHostHeader": spec.get("passHostHeader", True) is not False,
        }
        flush = (spec.get("responseForwarding") or {}).get("flushInterval")
        if flush:
            lb["responseForwarding"] = {"flushInterval": str(flush)}
        if spec.get("strategy") and spec["strategy"] != "RoundRobin":
            lb["strategy"] = spec["strategy"]
        if sticky := _sticky(spec):
            lb["sticky"] = sticky
        if spec.get("serversTransport"):
            lb["serversTransport"] = self._transport(namespace, str(spec["serversTransport"]))
        if spec.get("healthCheck") is not None:
            lb["healthCheck"] = self._health_check(namespace, name, spec["healthCheck"])
        service: dict[str, Any] = {"loadBalancer": lb}
        if spec.get("middlewares"):
            # makeMiddlewareKeys with the Service's own (defaulted) namespace as parent
            namespace_of_service = str(spec.get("namespace") or namespace)
            service["middlewares"] = self.middleware_keys(namespace_of_service, spec["middlewares"])
        return service

    # Middlewares

    def middleware_keys(self, parent_namespace: str, refs: list[dict[str, Any]]) -> list[str]:
        """``makeMiddlewareKeys`` / ``resolveReference``: the names a router (or a
        service, or a chain) lists, as the file provider knows them (``@kubernetescrd``
        dropped: everything is in one provider here)."""
        keys = []
        for ref in refs:
            name = str(ref.get("name") or "")
            if "@" in name:
                if not self.allow_cross_namespace and name.endswith("@" + _PROVIDER):
                    raise TranslationError(
                        f"invalid reference to middleware {name}: when allowCrossNamespace "
                        "is disabled, @kubernetescrd references are disallowed"
                    )
                base, _, provider = name.rpartition("@")
                keys.append(base if provider == _PROVIDER else name)
                continue
            namespace = str(ref.get("namespace") or parent_namespace)
            if not self.allow_cross_namespace and namespace != parent_namespace:
                raise TranslationError(
                    f"invalid reference to middleware {name}: allowCrossNamespace is "
                    "disabled, cross-namespace are disallowed"
                )
            keys.append(normalize(f"{namespace}-{name}"))
        return keys

    def build_middleware(self, middleware: Document) -> None:
        namespace, spec = _ns(middleware), dict(middleware["spec"])
        if spec.get("chain") is not None:
            chain = spec["chain"] or {}
            spec["chain"] = {
                "middlewares": self.middleware_keys(namespace, chain.get("middlewares") or [])
            }
        for kind in ("basicAuth", "digestAuth"):
            if spec.get(kind) is not None:
                spec[kind] = self._auth_users(namespace, kind, dict(spec[kind]))
        ident = normalize(_make_id(namespace, _name(middleware)))
        if spec.get("errors") is not None:
            # createErrorPageMiddleware: the page's Service reference becomes the servers
            # load balancer "<id>-errorpage-service" (a TraefikService: its own name).
            errors = dict(spec["errors"])
            full_name, servers_lb = self._name_and_service(namespace, errors.get("service") or {})
            if servers_lb is not None:
                full_name = f"{ident}-errorpage-service"
                self.services[full_name] = servers_lb
            errors["service"] = full_name
            spec["errors"] = errors
        self.middlewares[ident] = _as_file_spec(spec)

    def _auth_users(self, namespace: str, kind: str, auth: dict[str, Any]) -> dict[str, Any]:
        """``createBasicAuthMiddleware`` / ``createDigestAuthMiddleware``: the CRD's
        ``secret`` becomes the file provider's ``users`` (``loadBasicAuthCredentials`` for
        a ``kubernetes.io/basic-auth`` Secret, else ``loadAuthCredentials``)."""
        name = str(auth.pop("secret", "") or "")
        if not name:
            raise TranslationError("auth secret must be set")
        document = self.cluster.secrets.get((namespace, name))
        if document is None:
            raise TranslationError(f"secret '{namespace}/{name}' not found")
        data = {str(k): base64.b64decode(str(v)) for k, v in (document.get("data") or {}).items()}
        data.update(
            {str(k): str(v).encode() for k, v in (document.get("stringData") or {}).items()}
        )
        if kind == "basicAuth" and document.get("type") == "kubernetes.io/basic-auth":
            if "username" not in data or "password" not in data:
                raise TranslationError(f"secret '{namespace}/{name}' needs username and password")
            digest = base64.b64encode(hashlib.sha1(data["password"]).digest()).decode()
            auth["users"] = [f"{data['username'].decode()}:{{SHA}}{digest}"]
            return auth
        if len(data) != 1:
            raise TranslationError(f"secret '{namespace}/{name}' must hold one element exactly")
        lines = next(iter(data.values())).decode().split("\n")
        auth["users"] = [line.removesuffix("\r") for line in lines if line.removesuffix("\r")]
        if not auth["users"]:
            raise TranslationError(f"secret '{namespace}/{name}' does not contain any credentials")
        return auth

    def _health_check(self, namespace: str, name: str, check: dict[str, Any]) -> dict[str, Any]:
        """``healthCheck`` of a Service reference (buildServersLB): allowed only on an
        ExternalName Service (loadServers); ``unhealthyInterval`` defaults to ``interval``."""
        service = self.cluster.services.get((namespace, name))
        if service is None:
            raise TranslationError(f"kubernetes service not found: {namespace}/{name}")
        if (service.get("spec") or {}).get("type") != "ExternalName":
            raise TranslationError(
                f"healthCheck allowed only for ExternalName services: {namespace}/{name}"
            )
        unknown = set(check) - _HEALTH_CHECK_KEYS
        if unknown:
            raise TranslationError(f"healthCheck fields not translated: {sorted(unknown)}")
        out = {key: value for key, value in check.items() if value is not None}
        for key in ("interval", "unhealthyInterval", "timeout"):
            if key in out:
                out[key] = str(out[key])
        if "interval" in out:
            out.setdefault("unhealthyInterval", out["interval"])
        return out

    def _transport(self, namespace: str, name: str) -> str:
        """Add the file-provider twin of ServersTransport ``namespace/name``; its name."""
        document = self.cluster.transports.get((namespace, name))
        if document is None:
            raise TranslationError(f"ServersTransport {namespace}/{name} not found")
        spec = document.get("spec") or {}
        if spec.get("rootCAs") or spec.get("rootCAsSecrets") or spec.get("certificatesSecrets"):
            raise TranslationError("certificates of a ServersTransport are not translated")
        out: dict[str, Any] = {}
        for key in ("serverName", "insecureSkipVerify", "maxIdleConnsPerHost", "disableHTTP2"):
            if key in spec:
                out[key] = spec[key]
        timeouts = spec.get("forwardingTimeouts") or {}
        if timeouts:
            out["forwardingTimeouts"] = {k: str(v) for k, v in timeouts.items()}
        full = normalize(f"{namespace}-{name}")
        self.transports[full] = out
        return full

    def _native_url(self, namespace: str, name: str, port: int | str) -> str:
        """``nativeLB: true`` (loadServers, getNativeServiceAddress): the one server is the
        Service's ``spec.clusterIP`` with the Service port, never its endpoints."""
        service = self.cluster.services.get((namespace, name))
        if service is None:
            raise TranslationError(f"kubernetes service not found: {namespace}/{name}")
        service_port = self.cluster.service_port(namespace, name, port) or {}
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            raise TranslationError("ExternalName services are not translated")
        cluster_ip = str(spec.get("clusterIP") or "")
        if cluster_ip == "None":
            raise TranslationError(f"no clusterIP on headless service: {namespace}/{name}")
        if not cluster_ip:
            raise TranslationError(f"no clusterIP found for service: {namespace}/{name}")
        return _url(cluster_ip, int(service_port["port"]))

    def _urls(self, namespace: str, name: str, port: int | str) -> list[str]:
        key = f"{namespace}/{name}:{port}"
        if key in self.backends:
            return _as_list(self.backends[key])
        service_port = self.cluster.service_port(namespace, name, port)
        if service_port is not None:
            for alias in (service_port.get("port"), service_port.get("name")):
                if alias is not None and f"{namespace}/{name}:{alias}" in self.backends:
                    return _as_list(self.backends[f"{namespace}/{name}:{alias}"])
            urls = self.cluster.endpoint_urls(namespace, name, service_port)
            if urls:
                return urls
            raise TranslationError(f"no backend URL and no endpoints for {key}")
        raise TranslationError(f"no backend URL for {key} (and no Service {namespace}/{name})")


_HEALTH_CHECK_KEYS = frozenset(
    {
        "scheme",
        "path",
        "method",
        "status",
        "port",
        "hostname",
        "headers",
        "followRedirects",
        "mode",
        "interval",
        "unhealthyInterval",
        "timeout",
    }
)


def _as_list(urls: str | Sequence[str]) -> list[str]:
    return [urls] if isinstance(urls, str) else list(urls)


def _sticky(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``sticky`` block of a weighted service or LoadBalancerSpec, for the file provider."""
    cookie = (spec.get("sticky") or {}).get("cookie")
    if cookie is None:
        return None
    return {"cookie": {k: v for k, v in dict(cookie).items() if v is not None}}


def _as_file_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A Middleware spec as the file provider takes it with the CRD's meaning: the file
    provider refuses an empty mapping where the CRD reads an empty struct or map
    (``encodedCharacters: {}``: every character denied; ``customRequestHeaders: {}``:
    none), so an empty ``encodedCharacters`` is spelt with one default, and an empty
    map or list of ``headers`` is left out (Traefik only reads their length)."""
    spec = dict(spec)
    if spec.get("encodedCharacters") == {}:
        spec["encodedCharacters"] = {"allowEncodedSlash": False}
    if isinstance(spec.get("headers"), dict):
        spec["headers"] = {k: v for k, v in spec["headers"].items() if v not in ({}, [])}
    return spec
