"""From resources to the service graph: follow references, find servers, refuse cycles.

Names follow Traefik's Kubernetes CRD provider, because sticky cookie values and default
cookie names are hashes of them: a Service child is ``Normalize(ns-name-port)``
(``default-app-v1-80``), a TraefikService ``Normalize(ns-name)`` (``default-wrr``), a route
``Normalize(ns-ingress-<sha256(match)[:20]>)``.

A Kubernetes Service reference (name, port, namespace) finds its servers in this order:

1. an explicit ``backends`` entry ``"ns/name:port" -> URL`` (the port as written, or
   its number/name counterpart from the Service document); it stands for the endpoints,
   so with ``scheme: h2c`` its ``http://`` URLs become ``h2c://``;
2. the ``Endpoints``/``EndpointSlice`` documents of that Service: the Service port is
   mapped to the endpoint port through its name, as Kubernetes and Traefik do; several
   addresses form a servers load balancer;
3. a Service of ``type: ExternalName``: ``scheme://externalName:port``;
4. the in-cluster DNS name ``http://name.ns.svc:port``, so the same YAML works unchanged
   inside a cluster. Outside one that name does not resolve and every request is a 502,
   so the references that fell back to it are listed in one warning (a misspelled name
   lands here too), and ``cluster_dns=False`` makes each of them an error instead.

A ``backends`` entry that no reference uses is a warning (with the closest reference),
and a ``backends`` URL that is not ``http(s)://`` or ``h2c://`` is an error reported
once, with the ``http://`` spelling suggested.

With ``nativeLB: true`` (Traefik's native Kubernetes load balancing) step 2 is replaced:
the one server is the Service document's ``spec.clusterIP`` with the *Service* port (not
the endpoints' target port), and Kubernetes balances behind it. A headless Service
(``clusterIP: None``) or one without a clusterIP is an error, as in Traefik; an
ExternalName Service still gives its external name (Traefik checks that first). Without
a Service document, step 4's DNS name is the clusterIP's name anyway.

The scheme is ``https`` for port 443 or a port named ``https*`` unless ``scheme`` says
otherwise, as in Traefik.

A Middleware Traefik's provider skips (a Secret it cannot read, no basicAuth secret,
no forwardAuth address) or reads but cannot build (a user line it cannot split, a CA it
cannot parse, a regexp Go does not compile, an empty ipAllowList: each kind's ``New``)
loads as in Traefik: an error where a route uses it (Traefik does not serve that
router), a located warning where none does. A ``plugin`` middleware a route uses must name a plugin the runtime can build
(``plugins``, when given, says what is wrong with a name); the configuration alone does
not know the runtime's plugins.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from ..exceptions import ConfigIssue, ConfigWarning
from ._pacing import checkpoint
from .authsecrets import SecretProblem, build_problem, with_secrets
from .middlewares import (
    ChainSpec,
    ErrorPage,
    Middleware,
    MiddlewareRef,
    MiddlewareSpec,
    Plugin,
)
from .models import (
    DEFAULT_WEIGHT,
    Config,
    CookieOptions,
    EndpointSet,
    FailoverService,
    FailoverSpec,
    HRWService,
    HRWSpec,
    IngressRoute,
    MirroringService,
    MirroringSpec,
    MirrorTarget,
    Origin,
    Route,
    RouteSpec,
    ServersService,
    ServersTransport,
    Service,
    ServicePort,
    ServiceRef,
    TraefikService,
    WeightedChild,
    WeightedService,
)
from .resources import Resources

__all__ = ["PluginLookup", "default_cookie_name", "normalize", "resolve"]

PluginLookup = Callable[[str], "str | None"]
"""What is wrong with the plugin of a name (it is not registered, it does not load), or
None when the runtime can build it."""

PROVIDER = "kubernetescrd"
_OWN_PROVIDER = "@" + PROVIDER

_NORMALIZE = re.compile(r"[^\W_]+")


def normalize(name: str) -> str:
    """Traefik's ``provider.Normalize``: runs of non letters/digits become one ``-``."""
    return "-".join(_NORMALIZE.findall(name))


def default_cookie_name(qualified_service: str) -> str:
    """The name Traefik gives a sticky cookie whose ``cookie.name`` is empty
    (``pkg/server/cookie.GetName``), from the provider-qualified service name
    (``default-wrr@kubernetescrd``)."""
    digest = hashlib.sha1(f"_TRAEFIK_BACKEND_{qualified_service}".encode()).hexdigest()
    return "_" + digest[:5]


def _issue(origin: Origin, message: str, subpath: str = "") -> ConfigIssue:
    path = ".".join(p for p in (origin.path, subpath) if p)
    return ConfigIssue(message, origin.file, origin.line, origin.resource, path or None)


def _unbuilt_consequence(skipped: bool) -> str:
    """What Traefik does with a router using a Middleware it skips or cannot build."""
    if skipped:
        return (
            "Traefik's provider skips this Middleware, and a router using it is not "
            "served: the middleware does not exist"
        )
    return "Traefik does not serve a router whose middleware it cannot build"


def _with_default_name(sticky: CookieOptions | None, service_name: str) -> CookieOptions | None:
    if sticky is None or sticky.name:
        return sticky
    return replace(sticky, name=default_cookie_name(f"{service_name}@{PROVIDER}"))


class _Resolver:
    def __init__(
        self,
        res: Resources,
        backends: Mapping[str, str | Sequence[str]],
        allow_cross_namespace: bool,
        allow_external_name_services: bool = False,
        ingress_class: str = "",
        cluster_dns: bool = True,
        plugins: PluginLookup | None = None,
    ) -> None:
        self.res = res
        self.plugins = plugins
        self.backends = backends
        self.allow_cross_namespace = allow_cross_namespace
        self.allow_external_name_services = allow_external_name_services
        self.ingress_class = ingress_class
        self.issues: list[ConfigIssue] = []
        self.named_as_parent: set[tuple[str, str]] = set()
        self.selected: list[IngressRoute] = []
        self.cluster_dns = cluster_dns
        self.warnings: list[ConfigWarning] = []
        # backends keys a reference used, and every spelling a reference would accept
        self.used_backends: set[str] = set()
        self.reference_keys: dict[str, str] = {}  # key -> the reference's own key
        # "ns/name:port" -> (cluster DNS URL, where the first such reference is)
        self.dns_fallbacks: dict[str, tuple[str, Origin]] = {}
        self.bad_backends = self.check_backend_urls()
        self.services: dict[str, Service] = {}
        self.failed: set[tuple[str, str]] = set()
        self.stack: list[tuple[str, str]] = []
        self.endpoints: dict[tuple[str, str], list[EndpointSet]] = {}
        for e in res.endpoints:
            self.endpoints.setdefault((e.namespace, e.service), []).append(e)
        # Each reference resolved once (by identity), and every definition of each
        # Service child name in the order Traefik's CRD provider writes them.
        self.servers_services: dict[int, ServersService | None] = {}
        self.definitions = self._definitions()
        # Every Middleware by Traefik's id (``default-strip``), and the ids of those
        # whose document was refused (their errors are reported already).
        self.middleware_ids = {
            normalize(f"{ns}-{name}"): mw for (ns, name), mw in res.middlewares.items()
        }
        self.failed_middlewares = {
            normalize(f"{ns}-{name}")
            for kind, ns, name in res.groups
            if kind == "Middleware" and (ns, name) not in res.middlewares
        }
        # An errors middleware's spec with its page service resolved, once per id.
        self.resolved_specs: dict[str, MiddlewareSpec | None] = {}
        # Middlewares Traefik skips or cannot build (by id: each located problem, and
        # whether the provider skips the Middleware for it), and those a route used.
        self.unbuilt: dict[str, tuple[tuple[ConfigIssue, bool], ...]] = {}
        self.unbuilt_used: set[str] = set()
        self.read_middleware_secrets()

    def read_middleware_secrets(self) -> None:
        """The users (and certificates) of each authentication Middleware, and the
        secret values of each plugin, from the Secrets it names, as Traefik's CRD
        provider reads them. A Middleware whose Secret cannot be read is skipped by
        Traefik's provider (logged; its dynamic configuration has no such middleware),
        one it reads but cannot build fails each router using it: both are kept in
        :attr:`unbuilt`, an error where a route uses them, else a warning."""
        for ident, resource in list(self.middleware_ids.items()):
            skipped = tuple(problem for problem in resource.unbuildable if problem[1])
            if skipped:  # the provider reads no further
                self.unbuilt[ident] = skipped
                continue
            try:
                spec = with_secrets(
                    resource.spec, resource.namespace, self.res.secrets, self.res.secret_types
                )
            except SecretProblem as problem:
                issue = _issue(resource.origin, str(problem), f"spec.{problem.field}")
                self.unbuilt[ident] = ((issue, True),)
                continue
            if spec is not resource.spec:
                resource = self.middleware_ids[ident] = replace(resource, spec=spec)
            problems = list(resource.unbuildable)
            unbuildable = build_problem(spec)
            if unbuildable is not None:
                field = f"spec.{unbuildable.field}"
                problems.append((_issue(resource.origin, str(unbuildable), field), False))
            if problems:
                self.unbuilt[ident] = tuple(problems)

    def unbuilt_middleware(self, ident: str, ref: MiddlewareRef) -> None:
        """A route uses a Middleware Traefik skips or cannot build: an error at each of
        the Middleware's fields at fault (once), naming the first reference."""
        if ident in self.unbuilt_used:
            return
        self.unbuilt_used.add(ident)
        for problem, skipped in self.unbuilt[ident]:
            self.issues.append(
                replace(
                    problem,
                    message=f"{problem.message} (used by {ref.origin.describe()}; "
                    f"{_unbuilt_consequence(skipped)})",
                )
            )

    def unbuilt_warnings(self) -> None:
        """The Middlewares Traefik skips or cannot build that no route uses: loaded, as
        in Traefik, with a warning each."""
        for ident, problems in self.unbuilt.items():
            if ident in self.unbuilt_used:
                continue
            for problem, skipped in problems:
                self.warnings.append(
                    ConfigWarning(
                        f"{problem.message}: no route uses this Middleware; one that does "
                        f"is refused ({_unbuilt_consequence(skipped)})",
                        problem.file,
                        problem.line,
                        problem.resource,
                        problem.path,
                    )
                )

    def unknown_plugin(self, spec: MiddlewareSpec, ident: str, ref: MiddlewareRef) -> bool:
        """Whether ``spec`` is a plugin the runtime cannot build (an error at ``ref``)."""
        if not isinstance(spec, Plugin) or self.plugins is None:
            return False
        problem = self.plugins(spec.name)
        if problem is None:
            return False
        self.issues.append(
            _issue(ref.origin, f'middleware "{ident}@{PROVIDER}": plugin: {problem}', "name")
        )
        return True

    def check_backend_urls(self) -> set[str]:
        """Report each ``backends`` entry with a bad URL once (not once per reference),
        showing the value and the likely fix."""
        bad: set[str] = set()
        for key, value in self.backends.items():
            given = [value] if isinstance(value, str) else list(value)
            if not given:
                self.issues.append(ConfigIssue(f"backends {key!r}: no URL given"))
                bad.add(key)
            for url in given:
                if _valid_url(url):
                    continue
                bad.add(key)
                hint = ""
                if isinstance(url, str) and "://" not in url and _valid_url(f"http://{url}"):
                    hint = f'; did you mean "http://{url}"?'
                shown = f'"{url}"' if isinstance(url, str) else repr(url)
                self.issues.append(
                    ConfigIssue(
                        f"backends {key!r}: {shown} is not an http://, https:// or h2c:// URL "
                        f"with a host and port and no path{hint}"
                    )
                )
        return bad

    def unused_backend_warnings(self) -> None:
        """A ``backends`` key no reference uses is a silent no-op otherwise (a typo in
        the name or port): one warning each, with the closest reference key."""
        refs = sorted(set(self.reference_keys.values()))
        for key in self.backends:
            if key in self.used_backends:
                continue
            if key in self.reference_keys:
                own = self.reference_keys[key]
                winner = next(
                    (k for k in self.used_backends if self.reference_keys.get(k) == own), own
                )
                message = (
                    f"backends {key!r} is not used: the reference {own} is served by "
                    f"backends {winner!r}, another spelling of the same port"
                )
            else:
                close = difflib.get_close_matches(key, refs, n=1, cutoff=0.6)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                known = ", ".join(refs) if refs else "none"
                message = (
                    f"backends {key!r} matches no Service reference in the configuration "
                    f"and is ignored (references: {known}){hint}"
                )
            self.warnings.append(ConfigWarning(message))

    def dns_warning(self) -> None:
        """One warning listing every reference that fell back to the cluster DNS name."""
        if not self.dns_fallbacks:
            return
        listed = "; ".join(
            f"{key} -> {url} ({origin.file}:{origin.line})" if origin.file else f"{key} -> {url}"
            for key, (url, origin) in sorted(self.dns_fallbacks.items())
        )
        self.warnings.append(
            ConfigWarning(
                f"{len(self.dns_fallbacks)} Service reference(s) have no backends entry, "
                f"Endpoints or ExternalName Service and use the in-cluster DNS name, which "
                f"resolves only inside a Kubernetes cluster (elsewhere every request to them "
                f"is a 502): {listed}. Outside a cluster, map each with "
                f"--backend NS/NAME:PORT=URL (backends={{...}}), or make this an error with "
                f"--no-cluster-dns (cluster_dns=False)"
            )
        )

    def via_cluster_dns(
        self, ref: ServiceRef, scheme: str, port: int | str | None
    ) -> tuple[list[str], str] | None:
        """Step 4: the cluster DNS name, recorded for :meth:`dns_warning`, or an error
        when ``cluster_dns`` is off."""
        url = f"{scheme}://{ref.name}.{ref.namespace}.svc:{port}"
        key = f"{ref.namespace}/{ref.name}:{ref.port}"
        if self.cluster_dns:
            self.dns_fallbacks.setdefault(key, (url, ref.origin))
            return [url], "cluster DNS"
        known = {f"{ns}/{name}" for ns, name in self.res.services}
        known |= {f"{e.namespace}/{e.service}" for e in self.res.endpoints}
        known |= {k.rpartition(":")[0] for k in self.backends}
        close = difflib.get_close_matches(f"{ref.namespace}/{ref.name}", sorted(known), n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        self.issues.append(
            _issue(
                ref.origin,
                f"Service {ref.namespace}/{ref.name}{hint} has no backends entry, Endpoints or "
                f"ExternalName Service, and the cluster DNS fallback ({url}) is off "
                f"(--no-cluster-dns): add --backend {key}=URL (backends={{{key!r}: URL}})",
                "name",
            )
        )
        return None

    # ------------------------------------------------------------------ references

    def ref(self, ref: ServiceRef, parent_ns: str, name: str | None = None) -> Service | None:
        if ref.name.endswith(_OWN_PROVIDER):
            ref = self.own_provider_ref(ref)
        if ref.namespace != parent_ns and not self.allow_cross_namespace:
            self.issues.append(
                _issue(
                    ref.origin,
                    f"service {ref.namespace}/{ref.name} not in the parent resource namespace "
                    f"{parent_ns} (enable allow_cross_namespace to allow it)",
                    "namespace",
                )
            )
            return None
        if ref.kind == "TraefikService":
            return self.traefik_service(ref)
        return self.kube_service(ref, name)

    # ------------------------------------------------------------------ middlewares

    def middlewares(
        self, refs: Sequence[MiddlewareRef], parent_ns: str, stack: tuple[str, ...] = ()
    ) -> tuple[Middleware, ...] | None:
        """The middlewares ``refs`` name, in order, chains expanded in place (Traefik's
        ``BuildMiddlewareChain``); None when one is refused (each reported)."""
        out: list[Middleware] = []
        ok = True
        for ref in refs:
            found = self.middleware(ref, parent_ns, stack)
            if found is None:
                ok = False
            else:
                out.extend(found)
        return tuple(out) if ok else None

    def middleware(
        self, ref: MiddlewareRef, parent_ns: str, stack: tuple[str, ...]
    ) -> tuple[Middleware, ...] | None:
        """One reference, as Traefik's ``resolveReference``: the namespace defaults to
        the parent resource's; another namespace needs ``allow_cross_namespace``, and so
        does ``name@kubernetescrd`` (whose name is Traefik's id, ``namespace-name``)."""
        invalid = f"invalid reference to middleware {ref.name}"
        if "@" in ref.name:
            base, _, provider = ref.name.rpartition("@")
            if provider != PROVIDER:
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"{invalid}: there is no {provider!r} provider here, only "
                        "Kubernetes CRD resources (kubernetescrd)",
                        "name",
                    )
                )
                return None
            if not self.allow_cross_namespace:
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"{invalid}: when allowCrossNamespace is disabled, @kubernetescrd "
                        "references are disallowed (give the namespace field instead, or "
                        "enable allow_cross_namespace)",
                        "name",
                    )
                )
                return None
            if ref.namespace:
                self.warnings.append(
                    ConfigWarning(
                        f'namespace "{ref.namespace}" is ignored in cross-provider context',
                        ref.origin.file,
                        ref.origin.line,
                        ref.origin.resource,
                        ref.origin.path,
                    )
                )
            ident = base
        else:
            namespace = ref.namespace or parent_ns
            if namespace != parent_ns and not self.allow_cross_namespace:
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"{invalid}: allowCrossNamespace is disabled, cross-namespace are "
                        f"disallowed (middleware {namespace}/{ref.name}, parent resource "
                        f"in {parent_ns}; enable allow_cross_namespace to allow it)",
                        "namespace",
                    )
                )
                return None
            ident = normalize(f"{namespace}-{ref.name}")
        resource = self.middleware_ids.get(ident)
        if resource is None:
            if ident not in self.failed_middlewares:  # else its own errors are reported
                close = difflib.get_close_matches(ident, sorted(self.middleware_ids), 1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.issues.append(
                    _issue(
                        ref.origin,
                        f'middleware "{ident}@{PROVIDER}" does not exist{hint}',
                        "name",
                    )
                )
            return None
        if ident in stack:
            chain = " -> ".join([*stack[stack.index(ident) :], ident])
            self.issues.append(_issue(ref.origin, f"recursion detected in middleware: {chain}"))
            return None
        if isinstance(resource.spec, ChainSpec):
            return self.middlewares(resource.spec.middlewares, resource.namespace, (*stack, ident))
        if ident in self.unbuilt:
            self.unbuilt_middleware(ident, ref)
            return None
        if self.unknown_plugin(resource.spec, ident, ref):
            return None
        if ident not in self.resolved_specs:
            self.resolved_specs[ident] = self.with_services(
                ident, resource.spec, resource.namespace
            )
        spec = self.resolved_specs[ident]
        return None if spec is None else (Middleware(ident, spec, resource.origin),)

    def with_services(
        self, ident: str, spec: MiddlewareSpec, namespace: str
    ) -> MiddlewareSpec | None:
        """``spec`` with the services it names resolved: an ``errors`` page's service,
        as Traefik's ``createErrorPageMiddleware`` (``nameAndService``): a Kubernetes
        Service becomes the servers load balancer ``<id>-errorpage-service``."""
        if not isinstance(spec, ErrorPage):
            return spec
        service = self.ref(spec.service_ref, namespace, f"{ident}-errorpage-service")
        return None if service is None else replace(spec, service=service)

    def own_provider_ref(self, ref: ServiceRef) -> ServiceRef:
        """``name@kubernetescrd``: this provider's own TraefikService, by its plain name
        in the reference's namespace, else by Traefik's id ``namespace-name`` (what the
        name means in Traefik when no namespace is given: ``default-wrr@kubernetescrd``)."""
        plain = ref.name.removesuffix(_OWN_PROVIDER)
        if (ref.namespace, plain) not in self.res.traefik_services:
            wanted = normalize(plain)
            for ns, ts_name in self.res.traefik_services:
                if normalize(f"{ns}-{ts_name}") == wanted:
                    return replace(ref, name=ts_name, namespace=ns)
        return replace(ref, name=plain)

    def traefik_service(self, ref: ServiceRef) -> Service | None:
        key = (ref.namespace, ref.name)
        ts = self.res.traefik_services.get(key)
        if ts is None:
            self.issues.append(
                _issue(ref.origin, f"TraefikService {ref.namespace}/{ref.name} not found", "name")
            )
            return None
        if key in self.stack:
            cycle = [*self.stack[self.stack.index(key) :], key]
            chain = " -> ".join(f"{ns}/{n}" for ns, n in cycle)
            self.issues.append(_issue(ref.origin, f"reference cycle: {chain}", "name"))
            self.failed.add(key)
            return None
        if key in self.failed:
            return None
        name = normalize(f"{ts.namespace}-{ts.name}")
        if name in self.services:
            return self.services[name]
        self.stack.append(key)
        try:
            built = self.build_traefik_service(ts, name)
        finally:
            self.stack.pop()
        if built is None:
            self.failed.add(key)
            return None
        self.services[name] = built
        return built

    def build_traefik_service(self, ts: TraefikService, name: str) -> Service | None:
        spec = ts.spec
        ok = True
        if isinstance(spec, MirroringSpec):
            main = self.ref(spec.main, ts.namespace)
            mirrors = []
            for m in spec.mirrors:
                target = self.ref(m.ref, ts.namespace)
                if target is None:
                    ok = False
                else:
                    mirrors.append(MirrorTarget(self.child_name(m.ref), m.percent, target))
            if main is None or not ok:
                return None
            return MirroringService(
                name, main, tuple(mirrors), ts.origin, spec.mirror_body, spec.max_body_size
            )
        if isinstance(spec, FailoverSpec):
            main = self.ref(spec.main, ts.namespace)
            fallback = self.ref(spec.fallback, ts.namespace)
            if main is None or fallback is None:
                return None
            return FailoverService(
                name,
                self.child_name(spec.main),
                main,
                self.child_name(spec.fallback),
                fallback,
                ts.origin,
                spec.status,
                spec.max_request_body_bytes,
            )
        children = []
        for child_ref in spec.services:
            child = self.ref(child_ref, ts.namespace)
            if child is None:
                ok = False
                continue
            weight = DEFAULT_WEIGHT if child_ref.weight is None else child_ref.weight
            children.append(WeightedChild(self.child_name(child_ref), weight, child))
        if not ok:
            return None
        if isinstance(spec, HRWSpec):
            return HRWService(name, tuple(children), ts.origin)
        return WeightedService(
            name, tuple(children), ts.origin, _with_default_name(spec.sticky, name)
        )

    @staticmethod
    def child_name(ref: ServiceRef) -> str:
        if ref.kind == "TraefikService":
            return normalize(f"{ref.namespace}-{ref.name}")
        return normalize(f"{ref.namespace}-{ref.name}-{ref.port}")

    # ------------------------------------------------------------ Kubernetes Services

    def _definitions(self) -> dict[str, list[ServiceRef]]:
        """Every reference that defines the servers load balancer of a Service child
        name (``default-pair-80``), in the order Traefik's CRD provider writes them into
        its one map of services: the routes' (of routes with several services; a route
        with one names its balancer after itself), then each TraefikService's. The last
        valid one is the definition every parent shares."""
        out: dict[str, list[ServiceRef]] = {}

        def add(ref: ServiceRef, parent_ns: str) -> None:
            if ref.kind != "TraefikService" and (
                ref.namespace == parent_ns or self.allow_cross_namespace
            ):
                out.setdefault(self.child_name(ref), []).append(ref)

        for ir in self.res.ingress_routes:
            for route in ir.routes:
                if len(route.services) > 1:
                    for ref in route.services:
                        add(ref, ir.namespace)
        for ts in self.res.traefik_services.values():
            spec = ts.spec
            if isinstance(spec, MirroringSpec):
                refs = [spec.main, *(m.ref for m in spec.mirrors)]
            elif isinstance(spec, FailoverSpec):
                refs = [spec.main, spec.fallback]
            else:
                refs = list(spec.services)
            for ref in refs:
                add(ref, ts.namespace)
        return out

    def kube_service(self, ref: ServiceRef, name: str | None) -> Service | None:
        """A Service reference's servers load balancer. A route with one service gets
        one named after the route; otherwise it is the Service child name's one shared
        balancer, as Traefik's service manager builds ``namespace-name-port`` once: every
        reference is validated on its own, and all share the last valid definition."""
        if name is not None:
            return self._servers_service(ref, name)
        lb_name = self.child_name(ref)
        if self._servers_service(ref, lb_name) is None:
            return None
        for definition in reversed(self.definitions.get(lb_name, [ref])):
            shared = self._servers_service(definition, lb_name)
            if shared is not None:
                self.services[lb_name] = shared
                return shared
        return None  # unreachable: ``ref`` itself is valid

    def _servers_service(self, ref: ServiceRef, lb_name: str) -> ServersService | None:
        key = id(ref)
        if key not in self.servers_services:
            self.servers_services[key] = self._resolve_servers(ref, lb_name)
        return self.servers_services[key]

    def _resolve_servers(self, ref: ServiceRef, lb_name: str) -> ServersService | None:
        found = self.servers_for(ref)
        if found is None:
            return None
        servers, source, fenced = found
        if ref.health_check is not None:
            svc = self.res.services.get((ref.namespace, ref.name))
            if svc is None or svc.type != "ExternalName":
                # Traefik v3's CRD provider (loadServers): "healthCheck allowed only for
                # ExternalName services"; other Services rely on Kubernetes' readiness.
                found_as = "has no Service document" if svc is None else f"is {svc.type}"
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"healthCheck allowed only for ExternalName services: "
                        f"{ref.namespace}/{ref.name} {found_as}",
                        "healthCheck",
                    )
                )
                return None
        transport = None
        if ref.servers_transport is not None:
            transport = self.transport(ref)
            if transport is None:
                return None
            if transport.disable_http2 and any(s.startswith("h2c://") for s in servers):
                # Traefik then hands h2c:// to Go's HTTP/1.1-only transport, which knows
                # no such scheme: every request is answered 500 (observed on 3.7.15).
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"h2c servers cannot be reached through ServersTransport "
                        f"{ref.namespace}/{transport.name}, which has disableHTTP2: true "
                        f"(Traefik answers every request 500)",
                        "serversTransport",
                    )
                )
                return None
        middlewares = self.middlewares(ref.middlewares, ref.namespace)
        if middlewares is None:
            return None
        service = ServersService(
            name=lb_name,
            servers=tuple(servers),
            origin=ref.origin,
            source=source,
            pass_host_header=ref.pass_host_header,
            sticky=_with_default_name(ref.sticky, lb_name),
            transport=transport,
            health_check=ref.health_check,
            strategy=ref.strategy,
            middlewares=middlewares,
            fenced=fenced,
        )
        self.services.setdefault(lb_name, service)
        return service

    def transport(self, ref: ServiceRef) -> ServersTransport | None:
        """The ServersTransport a reference names, in the reference's namespace, with its
        CA and client certificates read from Secrets/ConfigMaps (PEM text)."""
        name = ref.servers_transport or ""
        if "@" in name:
            # Traefik: name@kubernetescrd is the transport's id (namespace-name), allowed
            # only with allowCrossNamespace; other providers do not exist here.
            plain, _, provider = name.rpartition("@")
            problem = None
            if provider != PROVIDER:
                problem = f"serversTransport {name!r}: there is no {provider!r} provider here"
            elif not self.allow_cross_namespace:
                problem = (
                    f"invalid reference to serversTransport {name}: namespace-name@kubernetescrd "
                    "format is not allowed when crossnamespace is disallowed"
                )
            if problem is not None:
                self.issues.append(_issue(ref.origin, problem, "serversTransport"))
                return None
            key = next(
                (k for k in self.res.transports if normalize(f"{k[0]}-{k[1]}") == normalize(plain)),
                (ref.namespace, plain),
            )
            ref = replace(ref, namespace=key[0], servers_transport=key[1])
            name = key[1]
        found = self.res.transports.get((ref.namespace, name))
        if found is None:
            self.issues.append(
                _issue(
                    ref.origin,
                    f"ServersTransport {ref.namespace}/{name} not found",
                    "serversTransport",
                )
            )
            return None
        pems: list[str] = []
        for source in found.root_cas:
            kind, _, obj = source.partition(":")
            store = self.res.secrets if kind == "secret" else self.res.config_maps
            data = store.get((found.namespace, obj))
            pem = data and (data.get("tls.ca") or data.get("ca.crt"))
            if not pem:
                what = "Secret" if kind == "secret" else "ConfigMap"
                self.issues.append(
                    _issue(
                        found.origin,
                        f"{what} {found.namespace}/{obj} with a tls.ca or ca.crt key not found",
                        "spec.rootCAs",
                    )
                )
                return None
            pems.append(pem)
        chains: list[str] = []
        for obj in found.client_certificates:
            data = self.res.secrets.get((found.namespace, obj)) or {}
            if not data.get("tls.crt") or not data.get("tls.key"):
                self.issues.append(
                    _issue(
                        found.origin,
                        f"Secret {found.namespace}/{obj} with tls.crt and tls.key not found",
                        "spec.certificatesSecrets",
                    )
                )
                return None
            chains.append(data["tls.crt"].rstrip("\n") + "\n" + data["tls.key"])
        return replace(found, root_cas=tuple(pems), client_certificates=tuple(chains))

    def servers_for(self, ref: ServiceRef) -> tuple[list[str], str, tuple[str, ...]] | None:
        """The server URLs of a Service reference, how they were found, and those of
        them that are fenced (terminating endpoints); None after an issue."""
        svc = self.res.services.get((ref.namespace, ref.name))
        port: ServicePort | None = None
        if svc is not None:
            port = next((p for p in svc.ports if ref.port in (p.port, p.name)), None)
            if port is None:
                known = ", ".join(
                    f"{p.port}/{p.name}" if p.name else str(p.port) for p in svc.ports
                )
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"port {ref.port} not found in Service {ref.namespace}/{ref.name} "
                        f"(ports: {known or 'none'})",
                        "port",
                    )
                )
                return None
            if svc.type == "ExternalName" and not self.allow_external_name_services:
                # Traefik's CRD provider refuses them unless allowExternalNameServices is
                # set (a Service anyone can create may point anywhere, e.g. at cloud
                # metadata endpoints); the route is then left out.
                self.issues.append(
                    _issue(
                        ref.origin,
                        f"externalName services not allowed: {ref.namespace}/{ref.name} "
                        "(enable allow_external_name_services, "
                        "--allow-external-name-services, to allow it)",
                        "name",
                    )
                )
                return None

        keys = self.backend_keys(ref, port)
        for key in keys:
            self.reference_keys.setdefault(key, keys[0])
        for key in keys:
            if key in self.backends:
                self.used_backends.add(key)
                if key in self.bad_backends:
                    return None  # reported once, by check_backend_urls
                value = self.backends[key]
                given = [value] if isinstance(value, str) else list(value)
                listed = [u.rstrip("/") for u in given]
                if ref.scheme == "h2c":
                    listed = ["h2c" + u[4:] if u.startswith("http://") else u for u in listed]
                return listed, f"backends[{key!r}]", ()

        scheme = ref.scheme or _default_scheme(
            port.port if port else ref.port, port.name if port else ref.port
        )
        if svc is not None and port is not None:
            if ref.native_lb and svc.type != "ExternalName":
                return _unfenced(self.native_server(ref, svc.cluster_ip, port, scheme))
            if ref.node_port_lb and svc.type == "NodePort":
                return _unfenced(self.node_port_servers(ref, port, scheme))
            sets = [
                e
                for e in self.endpoints.get((ref.namespace, ref.name), [])
                if e.port_name == port.name
            ]
            if sets:
                urls: list[str] = []
                fenced: list[str] = []
                for e in sets:
                    for address in e.addresses:
                        host = f"[{address}]" if ":" in address else address
                        url = f"{scheme}://{host}:{e.port}"
                        if url not in urls:  # the first slice naming it decides its fence
                            urls.append(url)
                            if address in e.fenced:
                                fenced.append(url)
                return urls, "endpoints", tuple(fenced)
            if svc.type == "ExternalName" and svc.external_name:
                return [f"{scheme}://{svc.external_name}:{port.port}"], "ExternalName", ()
            return _unfenced(self.via_cluster_dns(ref, scheme, port.port))
        if isinstance(ref.port, str):
            self.issues.append(
                _issue(
                    ref.origin,
                    f'port "{ref.port}" is a name, and there is no Service document '
                    f"{ref.namespace}/{ref.name} (nor a backends entry) to resolve it",
                    "port",
                )
            )
            return None
        return _unfenced(self.via_cluster_dns(ref, scheme, ref.port))

    def native_server(
        self, ref: ServiceRef, cluster_ip: str | None, port: ServicePort, scheme: str
    ) -> tuple[list[str], str] | None:
        """The one server of a ``nativeLB`` reference: clusterIP and Service port
        (Traefik's ``getNativeServiceAddress``, with its error texts)."""
        if cluster_ip is None or cluster_ip == "None":
            what = (
                "no clusterIP found for service"
                if cluster_ip is None
                else "no clusterIP on headless service"
            )
            self.issues.append(
                _issue(
                    ref.origin,
                    f"getting native Kubernetes Service address: {what}: "
                    f"{ref.namespace}/{ref.name}",
                    "nativeLB",
                )
            )
            return None
        host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip
        return [f"{scheme}://{host}:{port.port}"], "nativeLB (clusterIP)"

    def node_port_servers(
        self, ref: ServiceRef, port: ServicePort, scheme: str
    ) -> tuple[list[str], str] | None:
        """``nodePortLB`` on a NodePort Service: every Node's InternalIP with the Service
        port's ``nodePort`` (Traefik's ``loadServers``, with its error texts)."""
        problem = None
        if not self.res.nodes:
            problem = f"nodes not found for NodePort service {ref.namespace}/{ref.name}"
        elif port.node_port is None:
            problem = (
                f"port {port.port} of NodePort service {ref.namespace}/{ref.name} has no nodePort"
            )
        urls = [
            f"{scheme}://[{ip}]:{port.node_port}"
            if ":" in ip
            else f"{scheme}://{ip}:{port.node_port}"
            for n in self.res.nodes
            for ip in n.internal_ips
        ]
        if problem is None and not urls:
            problem = f"no servers were generated for service {ref.name} in namespace"
        if problem is not None:
            self.issues.append(_issue(ref.origin, problem, "nodePortLB"))
            return None
        return urls, "nodePortLB (nodes' InternalIP)"

    @staticmethod
    def backend_keys(ref: ServiceRef, port: ServicePort | None) -> list[str]:
        keys = [f"{ref.namespace}/{ref.name}:{ref.port}"]
        if port is not None:
            keys += [f"{ref.namespace}/{ref.name}:{p}" for p in (port.port, port.name) if p]
        return keys

    # ----------------------------------------------------------------------- routes

    def routes(self) -> list[Route]:
        """The root routers, highest priority first, each parent holding its children
        (multi-layer routing, Traefik 3.7's ``parentRefs``)."""
        self.selected = [ir for ir in self.res.ingress_routes if self.of_our_class(ir)]
        flat: dict[tuple[str, str], list[Route]] = {}
        for ir in self.selected:
            for ref in ir.unrouted:  # every independent error is reported, not the rule's only
                self.ref(ref, ir.namespace)
            flat[(ir.namespace, ir.name)] = [self.route(ir, spec) for spec in ir.routes]
        children = self.parents()
        built: dict[tuple[str, str], list[Route]] = {}
        out: list[Route] = []
        for ir in self.selected:
            key = (ir.namespace, ir.name)
            if not ir.parent_refs:
                out.extend(_tree(key, flat, children, built))
            if key in children:
                for spec in ir.routes:
                    if spec.services:
                        self.issues.append(
                            _issue(
                                spec.origin,
                                "a parent route cannot have services (an IngressRoute names "
                                f"{ir.namespace}/{ir.name} in its parentRefs); Traefik "
                                "disables it: router has both a service and is referenced "
                                "as a parent by other routers",
                                "services",
                            )
                        )
            elif key not in self.named_as_parent:  # else the reference is the error
                for spec in ir.routes:
                    if not spec.services:
                        self.issues.append(
                            _issue(
                                spec.origin,
                                "required field is missing: a route without services must "
                                f"be a parent, and no IngressRoute names {ir.namespace}/"
                                f"{ir.name} in its parentRefs (Traefik disables the router: "
                                "no service and no child routers)",
                                "services",
                            )
                        )
        # Highest priority first; equal priorities keep file order (Traefik: unspecified).
        out.sort(key=lambda route: -route.priority)
        return [r for r in out if r.service is not None or r.children]

    def route(self, ir: IngressRoute, spec: RouteSpec) -> Route:
        checkpoint()
        digest = hashlib.sha256(spec.rule.text.encode()).hexdigest()[:20]
        name = normalize(f"{ir.namespace}-{ir.name}-{digest}")
        service: Service | None = None
        refs = spec.services
        if len(refs) == 1 and refs[0].kind == "TraefikService":
            service = self.ref(refs[0], ir.namespace)
        elif len(refs) == 1:
            service = self.ref(refs[0], ir.namespace, name)
        elif refs:
            children = []
            ok = True
            for r in refs:
                child = self.ref(r, ir.namespace)
                if child is None:
                    ok = False
                    continue
                children.append(
                    WeightedChild(
                        self.child_name(r),
                        DEFAULT_WEIGHT if r.weight is None else r.weight,
                        child,
                    )
                )
            service = (
                WeightedService(name, tuple(children), spec.origin) if ok and children else None
            )
        middlewares = self.middlewares(spec.middlewares, ir.namespace)
        return Route(
            name,
            spec.rule,
            spec.priority,
            service,
            spec.origin,
            observability=spec.observability,
            middlewares=middlewares or (),
        )

    def of_our_class(self, ir: IngressRoute) -> bool:
        """Whether the provider serves ``ir`` by its ingress class, as Traefik's
        kubernetesCRD provider selects; a skipped one is said, with the way to serve it."""
        if _selected(self.ingress_class, ir.ingress_class):
            return True
        wanted = self.ingress_class or "none or traefik"
        self.res.warnings.append(
            ConfigWarning(
                f"skipped, as Traefik skips it: ingress class {ir.ingress_class!r} "
                f"is not the provider's ({wanted}; set ingress_class, "
                "--ingress-class, to serve it)",
                ir.origin.file,
                ir.origin.line,
                ir.origin.resource,
            )
        )
        return False

    def parents(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Parent IngressRoute -> its child IngressRoutes, in file order; a reference to
        a missing parent, to another namespace (unless allowed) or closing a cycle is an
        issue, and leaves that child out, as Traefik's provider skips it."""
        known = {(ir.namespace, ir.name): ir for ir in self.selected}
        self.named_as_parent = {
            (ref.namespace, ref.name) for ir in self.selected for ref in ir.parent_refs
        }
        edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for ir in self.selected:
            for ref in ir.parent_refs:
                where = f"{ref.namespace}/{ref.name}"
                if ref.namespace != ir.namespace and not self.allow_cross_namespace:
                    self.issues.append(
                        _issue(
                            ref.origin,
                            f"cross-namespace reference to parent IngressRoute {where} not "
                            f"allowed (enable allow_cross_namespace to allow it)",
                            "namespace",
                        )
                    )
                elif (ref.namespace, ref.name) not in known:
                    self.issues.append(
                        _issue(ref.origin, f"parent IngressRoute {where} does not exist", "name")
                    )
                else:
                    edges.setdefault((ir.namespace, ir.name), []).append((ref.namespace, ref.name))
        children: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for child, parents in edges.items():
            cycle = _cycle(child, edges)
            if cycle is not None:
                chain = " -> ".join(f"{ns}/{n}" for ns, n in cycle)
                self.issues.append(
                    _issue(known[child].origin, f"parentRefs cycle: {chain}", "spec.parentRefs")
                )
                continue
            for parent in dict.fromkeys(parents):
                children.setdefault(parent, []).append(child)
        return children


def _tree(
    key: tuple[str, str],
    flat: Mapping[tuple[str, str], list[Route]],
    children: Mapping[tuple[str, str], list[tuple[str, str]]],
    built: dict[tuple[str, str], list[Route]],
) -> list[Route]:
    """The routes of IngressRoute ``key``, each holding the routes of its child
    IngressRoutes (built once each, highest priority first). No closure: a recursive
    one would leave a reference cycle behind every load."""
    if key not in built:
        under = [
            r
            for child in children.get(key, [])
            for r in _tree(child, flat, children, built)
            if r.service is not None or r.children
        ]
        under.sort(key=lambda route: -route.priority)
        built[key] = [replace(r, children=tuple(under)) for r in flat[key]]
    return built[key]


def _cycle(
    start: tuple[str, str], edges: Mapping[tuple[str, str], list[tuple[str, str]]]
) -> list[tuple[str, str]] | None:
    """The chain of parentRefs leading from ``start`` back to itself, if any."""
    stack: list[tuple[tuple[str, str], list[tuple[str, str]]]] = [(start, [start])]
    seen: set[tuple[str, str]] = set()
    while stack:
        node, path = stack.pop()
        for parent in edges.get(node, []):
            if parent == start:
                return [*path, start]
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, [*path, parent]))
    return None


def _selected(provider_class: str, route_class: str) -> bool:
    """Traefik's ``shouldProcessIngress``: a route is served when its class (the
    ``ingressClassName`` field, else the ``kubernetes.io/ingress.class`` annotation) is
    the provider's ``ingressClass``; without one, routes without a class or with the
    class ``traefik``."""
    return provider_class == route_class or (not provider_class and route_class == "traefik")


def _unfenced(found: tuple[list[str], str] | None) -> tuple[list[str], str, tuple[str, ...]] | None:
    """Servers found elsewhere than in endpoints: none of them is fenced."""
    return None if found is None else (*found, ())


def _default_scheme(number: int | str | None, name: int | str | None) -> str:
    if number == 443 or (isinstance(name, str) and name.startswith("https")):
        return "https"
    return "http"


def _valid_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https", "h2c")
        and bool(parts.hostname)
        and parts.path in ("", "/")
    )


def resolve(
    res: Resources,
    backends: Mapping[str, str | Sequence[str]] | None = None,
    *,
    allow_cross_namespace: bool = False,
    allow_external_name_services: bool = False,
    ingress_class: str = "",
    cluster_dns: bool = True,
    plugins: PluginLookup | None = None,
) -> tuple[Config, list[ConfigIssue]]:
    """Resolve every route of the ``ingress_class`` (and every TraefikService, used or
    not, so errors in an unused one are still reported). ``cluster_dns=False`` makes a
    reference that would fall back to the in-cluster DNS name an error. ``plugins``
    checks the plugin each route's ``plugin`` middleware names (None: not checked)."""
    resolver = _Resolver(
        res,
        backends or {},
        allow_cross_namespace,
        allow_external_name_services,
        ingress_class,
        cluster_dns,
        plugins,
    )
    routes = resolver.routes()
    for ts in res.traefik_services.values():
        checkpoint()
        resolver.traefik_service(ServiceRef(ts.name, "TraefikService", ts.namespace, ts.origin))
    resolver.unused_backend_warnings()
    resolver.unbuilt_warnings()
    resolver.dns_warning()
    config = Config(tuple(routes), dict(resolver.services), (*res.warnings, *resolver.warnings))
    return config, resolver.issues
