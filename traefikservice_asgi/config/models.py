"""The validated configuration: frozen data that knows where it came from.

Two layers, as in Traefik (CRD objects, then the dynamic configuration built from them):

* **resources** (``IngressRoute``, ``TraefikService``, ``Service``, ``Endpoints``...), each
  field already checked, camelCase keys mapped to snake_case;
* the **resolved graph** the builder turns into ASGI apps: every reference followed,
  every Kubernetes Service reference turned into server URLs, cycles refused. Its nodes
  carry Traefik's names (``default-app-v1-80``, ``default-wrr``) because the sticky
  cookie values are hashes of exactly those names.

The resources port Traefik's CRD types (``pkg/provider/kubernetes/crd/traefikio/v1alpha1``),
the graph its dynamic configuration (``pkg/config/dynamic/http_config.go``), with its
defaults as named constants beside them. Nothing here does I/O or needs an event loop,
so ``check`` and tests are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..exceptions import ConfigIssue, ConfigWarning
from ..rules import Rule
from .middlewares import Middleware, MiddlewareRef

__all__ = [
    "Config",
    "CookieOptions",
    "DEFAULT_COOKIE_PATH",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS",
    "DEFAULT_HEALTH_CHECK_INTERVAL",
    "DEFAULT_HEALTH_CHECK_METHOD",
    "DEFAULT_HEALTH_CHECK_TIMEOUT",
    "DEFAULT_IDLE_CONN_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_IDLE_CONNS_PER_HOST",
    "DEFAULT_MAX_REQUEST_BODY_BYTES",
    "DEFAULT_MIRROR_BODY",
    "DEFAULT_PASS_HOST_HEADER",
    "DEFAULT_STRATEGY",
    "DEFAULT_WEIGHT",
    "EndpointSet",
    "FailoverService",
    "FailoverSpec",
    "HRWService",
    "HRWSpec",
    "HealthCheck",
    "IngressRoute",
    "Kind",
    "KubeService",
    "MirrorRef",
    "MirrorTarget",
    "MirroringService",
    "MirroringSpec",
    "Origin",
    "ParentRef",
    "NodeAddresses",
    "Route",
    "RouteObservability",
    "RouteSpec",
    "STRATEGIES",
    "ServersService",
    "ServersTransport",
    "Service",
    "ServicePort",
    "ServiceRef",
    "Strategy",
    "TraefikService",
    "WeightedChild",
    "WeightedService",
    "WeightedSpec",
]

Kind = Literal["Service", "TraefikService"]

Strategy = str
"""How a Kubernetes Service reference balances its servers (Traefik's
``BalancerStrategy``): one of :data:`STRATEGIES`; ``wrr`` is the default."""
STRATEGIES: tuple[Strategy, ...] = ("wrr", "p2c", "hrw", "leasttime")
"""The registry of balancing strategies: the names the configuration accepts, each
served by the class its own module, ``loadbalancer/<name>.py``, exports as
``BALANCER`` (the builder finds it there). Adding a strategy is that module and its
name here (docs/guides/adding-a-strategy.md)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was written: file, line, resource and field path."""

    file: str | None
    line: int | None
    resource: str
    path: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else "<config>"
        return f"{where} ({self.resource} {self.path})"


# --------------------------------------------------------------------------- resources

# Traefik's defaults, each written once: the parser falls back to them, the models
# default to them, the runtime reads them from here.

# A Service reference (the CRD provider: weight 1 when absent, passHostHeader true,
# strategy wrr).
DEFAULT_WEIGHT = 1
DEFAULT_PASS_HOST_HEADER = True
DEFAULT_STRATEGY: Strategy = "wrr"

# healthCheck (pkg/config/dynamic: DefaultHealthCheckInterval, ...Timeout,
# ServerHealthCheck.SetDefaults).
DEFAULT_HEALTH_CHECK_INTERVAL = 30.0
DEFAULT_HEALTH_CHECK_TIMEOUT = 5.0
DEFAULT_HEALTH_CHECK_METHOD = "GET"
DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS = True

# mirroring (Mirroring.SetDefaults: the body is mirrored, with no size limit) and
# failover's errors.maxRequestBodyBytes (no limit); -1 means unlimited.
DEFAULT_MIRROR_BODY = True
DEFAULT_MAX_BODY_SIZE = -1
DEFAULT_MAX_REQUEST_BODY_BYTES = -1

# Traefik's default serversTransport (pkg/config/static): what a ServersTransport field
# falls back to when it is 0 or absent, and what servers without one get.
DEFAULT_DIAL_TIMEOUT = 30.0
DEFAULT_IDLE_CONN_TIMEOUT = 90.0
DEFAULT_MAX_IDLE_CONNS_PER_HOST = 200

# sticky.cookie (Cookie.SetDefaults): only the path is set.
DEFAULT_COOKIE_PATH = "/"


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """The ``sticky.cookie`` attributes (Traefik's ``dynamic.Cookie``); defaults are
    Traefik's (only ``Path=/``).

    ``name`` is sanitised when read; an empty one is replaced by Traefik's default name
    (a hash of the service name) when the service is resolved.
    """

    name: str
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None
    max_age: int = 0
    path: str = DEFAULT_COOKIE_PATH
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """Traefik's ``ServerHealthCheck`` on a Service reference (HTTP mode only).

    Every server of the balancer is probed at ``scheme://host:port`` + ``path`` (each
    replaced when set) every ``interval`` seconds while UP, every
    ``unhealthy_interval`` while DOWN; it is UP when the answer comes within
    ``timeout`` with ``status`` (or, when ``status`` is 0, any 2xx or 3xx).
    """

    origin: Origin
    path: str = ""
    interval: float = DEFAULT_HEALTH_CHECK_INTERVAL
    unhealthy_interval: float = DEFAULT_HEALTH_CHECK_INTERVAL
    timeout: float = DEFAULT_HEALTH_CHECK_TIMEOUT
    scheme: str | None = None
    hostname: str | None = None
    port: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 0
    follow_redirects: bool = DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS
    method: str = DEFAULT_HEALTH_CHECK_METHOD


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """Traefik's ``LoadBalancerSpec``: a reference to a Kubernetes Service or a
    TraefikService, with its per-reference options."""

    name: str
    kind: Kind
    namespace: str
    origin: Origin
    port: int | str | None = None
    weight: int | None = None
    scheme: str | None = None
    pass_host_header: bool = DEFAULT_PASS_HOST_HEADER
    sticky: CookieOptions | None = None  # per-server cookie (Service kind only)
    servers_transport: str | None = None
    health_check: HealthCheck | None = None  # Service kind only
    strategy: Strategy = DEFAULT_STRATEGY  # Service kind only
    native_lb: bool = False  # Service kind only: one server, the clusterIP
    node_port_lb: bool = False  # Service kind only: the nodes' InternalIPs + nodePort
    middlewares: tuple[MiddlewareRef, ...] = ()  # Service kind only


@dataclass(frozen=True, slots=True)
class ServersTransport:
    """How to talk to servers (Traefik's ``ServersTransport``); defaults are Traefik's.

    CA and client certificates are names of Secrets/ConfigMaps until resolution, PEM
    text after it.
    """

    namespace: str
    name: str
    origin: Origin
    server_name: str | None = None
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()
    client_certificates: tuple[str, ...] = ()
    max_idle_conns_per_host: int = DEFAULT_MAX_IDLE_CONNS_PER_HOST
    dial_timeout: float = DEFAULT_DIAL_TIMEOUT
    response_header_timeout: float | None = None
    idle_conn_timeout: float = DEFAULT_IDLE_CONN_TIMEOUT
    disable_http2: bool = False  # only checked: it leaves Traefik no way to reach h2c://
    # peerCertURI and peerCertSANs, as (type, value) with type "URI" or "DNSName": the
    # server's certificate must carry one of them (Traefik's VerifyPeerCertificate)
    peer_cert_sans: tuple[tuple[str, str], ...] = ()
    min_version: str | None = None  # Go's names: VersionTLS12...
    max_version: str | None = None
    # cipherSuites: Go's names (config/ciphers.py), as written; () is OpenSSL's defaults
    cipher_suites: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MirrorRef:
    ref: ServiceRef
    percent: int


@dataclass(frozen=True, slots=True)
class WeightedSpec:
    services: tuple[ServiceRef, ...]
    sticky: CookieOptions | None  # name None -> Traefik's default, filled in by resolve


@dataclass(frozen=True, slots=True)
class MirroringSpec:
    main: ServiceRef
    mirrors: tuple[MirrorRef, ...]
    mirror_body: bool = DEFAULT_MIRROR_BODY
    max_body_size: int = DEFAULT_MAX_BODY_SIZE


@dataclass(frozen=True, slots=True)
class FailoverSpec:
    """``failover``: ``status`` holds the ``errors.status`` ranges, inclusive."""

    main: ServiceRef
    fallback: ServiceRef
    status: tuple[tuple[int, int], ...]
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES


@dataclass(frozen=True, slots=True)
class HRWSpec:
    """``highestRandomWeight``: children with weights, no stickiness options."""

    services: tuple[ServiceRef, ...]


@dataclass(frozen=True, slots=True)
class TraefikService:
    namespace: str
    name: str
    origin: Origin
    spec: WeightedSpec | MirroringSpec | FailoverSpec | HRWSpec


@dataclass(frozen=True, slots=True)
class RouteObservability:
    """A route's ``observability`` (Traefik's ``RouterObservabilityConfig``): None means
    unset (the entry point's setting applies). Accepted and kept on the route; this
    package does not act on it yet."""

    access_logs: bool | None = None
    metrics: bool | None = None
    tracing: bool | None = None
    trace_verbosity: Literal["minimal", "detailed"] = "minimal"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route; ``services`` is empty for a parent of multi-layer routing."""

    rule: Rule
    priority: int
    services: tuple[ServiceRef, ...]
    origin: Origin
    observability: RouteObservability | None = None
    middlewares: tuple[MiddlewareRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ParentRef:
    """An entry of ``spec.parentRefs``: the parent IngressRoute (namespace defaulted to
    the child's)."""

    name: str
    namespace: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class IngressRoute:
    namespace: str
    name: str
    origin: Origin
    routes: tuple[RouteSpec, ...]
    parent_refs: tuple[ParentRef, ...] = ()
    # spec.ingressClassName, else the kubernetes.io/ingress.class annotation ("" if none)
    ingress_class: str = ""
    # the services of routes dropped for a missing or invalid `match`: resolved only so
    # that their own errors are reported beside the rule's
    unrouted: tuple[ServiceRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str = ""
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class KubeService:
    namespace: str
    name: str
    origin: Origin
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    external_name: str | None = None
    cluster_ip: str | None = None  # spec.clusterIP; "None" for a headless Service


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    """A ``Node`` document's ``InternalIP`` addresses (for ``nodePortLB``)."""

    name: str
    internal_ips: tuple[str, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class EndpointSet:
    """Addresses serving one port name of a Service (from Endpoints or EndpointSlice).

    ``fenced`` holds those of ``addresses`` whose endpoint is terminating yet still
    serving (an EndpointSlice's ``terminating: true``): Traefik's ``Server.Fenced``."""

    namespace: str
    service: str
    port_name: str
    port: int
    addresses: tuple[str, ...]
    origin: Origin
    fenced: tuple[str, ...] = ()


# --------------------------------------------------------------------- resolved graph


@dataclass(frozen=True, slots=True)
class ServersService:
    """A Kubernetes Service reference resolved to server URLs (a servers load balancer)."""

    name: str
    servers: tuple[str, ...]
    origin: Origin
    source: str  # how the URLs were found, for `check`
    pass_host_header: bool = DEFAULT_PASS_HOST_HEADER
    sticky: CookieOptions | None = None
    transport: ServersTransport | None = None  # None: the gateway's default transport
    health_check: HealthCheck | None = None
    strategy: Strategy = DEFAULT_STRATEGY
    # The middlewares of the defining reference, around the balancer (Traefik 3.7's
    # Service middlewares), in order.
    middlewares: tuple[Middleware, ...] = ()
    # Those of `servers` that are fenced (Traefik's `Server.Fenced`: a terminating
    # endpoint still serving): no balancer picks them, a sticky cookie still reaches
    # them. Part of the node's value, so a change of fence rebuilds the balancer.
    fenced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WeightedChild:
    name: str
    weight: int
    service: Service


@dataclass(frozen=True, slots=True)
class WeightedService:
    name: str
    children: tuple[WeightedChild, ...]
    origin: Origin
    sticky: CookieOptions | None = None


@dataclass(frozen=True, slots=True)
class MirrorTarget:
    name: str
    percent: int
    service: Service


@dataclass(frozen=True, slots=True)
class MirroringService:
    name: str
    main: Service
    mirrors: tuple[MirrorTarget, ...]
    origin: Origin
    mirror_body: bool = DEFAULT_MIRROR_BODY
    max_body_size: int = DEFAULT_MAX_BODY_SIZE


@dataclass(frozen=True, slots=True)
class FailoverService:
    """The main and fallback services, with their Traefik names (for ``check``)."""

    name: str
    main_name: str
    main: Service
    fallback_name: str
    fallback: Service
    origin: Origin
    status: tuple[tuple[int, int], ...]
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES


@dataclass(frozen=True, slots=True)
class HRWService:
    """Highest random weight; a child's name is hashed into its score, so it is the
    Traefik name (``default-app-v1-80``)."""

    name: str
    children: tuple[WeightedChild, ...]
    origin: Origin


Service = ServersService | WeightedService | MirroringService | FailoverService | HRWService


@dataclass(frozen=True, slots=True)
class Route:
    """A router: its rule, priority and the service it sends matching requests to.

    A parent router (multi-layer routing) has ``children`` instead, highest priority
    first, each matched only once the parent's rule has, and its ``service`` is None. A
    child with several parents is the same ``Route`` under each.
    """

    name: str
    rule: Rule
    priority: int
    service: Service | None
    origin: Origin
    children: tuple[Route, ...] = ()
    observability: RouteObservability | None = None
    middlewares: tuple[Middleware, ...] = ()  # in order, chains expanded


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded, validated and resolved configuration, ready to build.

    ``skipped``: with ``skip_invalid``, the issues of what was left out, each naming the
    route (``spec.routes[N]``) or else the whole resource it lies in."""

    routes: tuple[Route, ...]
    services: dict[str, Service] = field(default_factory=dict)
    warnings: tuple[ConfigWarning, ...] = ()
    skipped: tuple[ConfigIssue, ...] = ()
