"""The ``Middleware`` resource as inert data: one frozen spec class per middleware kind.

Each spec class names its kind as Traefik's CRD spells the key (``addPrefix``,
``stripPrefix``...) in ``KIND``; the runtime class of that kind is found by it in
:data:`traefikservice_asgi.middlewares.MIDDLEWARES` (the config layer does not import the
runtime; ``tests/middlewares/test_registry.py`` keeps :data:`MIDDLEWARE_KINDS` and that
registry equal). A ``chain`` is expanded at resolution, so the resolved route holds its
middlewares in order, flat, as Traefik's ``BuildMiddlewareChain`` applies them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ._oxy_predicate import Expression

if TYPE_CHECKING:
    from ..exceptions import ConfigIssue
    from .models import Origin, Service, ServiceRef

__all__ = [
    "DEFAULT_RATE_LIMIT_BURST",
    "DEFAULT_RATE_LIMIT_PERIOD",
    "DEFAULT_REDIS_DIAL_TIMEOUT",
    "DEFAULT_REDIS_ENDPOINTS",
    "DEFAULT_REDIS_READ_TIMEOUT",
    "DEFAULT_REDIS_WRITE_TIMEOUT",
    "DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES",
    "MIDDLEWARE_KINDS",
    "AddPrefix",
    "BasicAuth",
    "ClientTLS",
    "DigestAuth",
    "ForwardAuth",
    "ChainSpec",
    "ContentType",
    "EncodedCharacters",
    "Headers",
    "Buffering",
    "COMPRESS_ENCODINGS",
    "Compress",
    "DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES",
    "ErrorPage",
    "StatusRanges",
    "CircuitBreaker",
    "DEFAULT_CHECK_PERIOD",
    "DEFAULT_FALLBACK_DURATION",
    "DEFAULT_RECOVERY_DURATION",
    "IPAllowList",
    "IPWhiteList",
    "InFlightReq",
    "IPStrategy",
    "Middleware",
    "MiddlewareRef",
    "MiddlewareResource",
    "MiddlewareSpec",
    "RedirectRegex",
    "RedirectScheme",
    "ReplacePath",
    "ReplacePathRegex",
    "RateLimit",
    "Redis",
    "Retry",
    "SecretAuth",
    "SourceCriterion",
    "StripPrefix",
    "StripPrefixRegex",
    "Plugin",
]


StatusRanges = tuple[tuple[int, int], ...]
"""Traefik's ``types.HTTPCodeRanges``: inclusive ``(low, high)`` status ranges."""


@dataclass(frozen=True, slots=True)
class MiddlewareSpec:
    """The base of every middleware kind's configuration."""

    KIND: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class AddPrefix(MiddlewareSpec):
    """``addPrefix.prefix``: put in front of the path (Traefik: required, non-empty)."""

    KIND: ClassVar[str] = "addPrefix"
    prefix: str


@dataclass(frozen=True, slots=True)
class StripPrefix(MiddlewareSpec):
    """``stripPrefix``: the first of ``prefixes`` (each trimmed of spaces) the path
    starts with is removed; ``forceSlash`` is deprecated (Traefik's default false)."""

    KIND: ClassVar[str] = "stripPrefix"
    prefixes: tuple[str, ...]
    force_slash: bool = False


@dataclass(frozen=True, slots=True)
class ReplacePath(MiddlewareSpec):
    """``replacePath.path``: the path the backend receives, as written (escaped)."""

    KIND: ClassVar[str] = "replacePath"
    path: str


@dataclass(frozen=True, slots=True)
class StripPrefixRegex(MiddlewareSpec):
    """``stripPrefixRegex.regex``: Go regexps (each trimmed of spaces); the first whose
    leftmost match is non-empty and starts the decoded path is removed from it."""

    KIND: ClassVar[str] = "stripPrefixRegex"
    regex: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReplacePathRegex(MiddlewareSpec):
    """``replacePathRegex``: every match of ``regex`` in the escaped path replaced by
    ``replacement`` (Go's ``ReplaceAllString``: ``$1``, ``${name}``); both trimmed."""

    KIND: ClassVar[str] = "replacePathRegex"
    regex: str
    replacement: str


@dataclass(frozen=True, slots=True)
class RedirectRegex(MiddlewareSpec):
    """``redirectRegex``: a request whose URL (``scheme://host[:port]/path?query``)
    ``regex`` matches and whose replacement differs is redirected there."""

    KIND: ClassVar[str] = "redirectRegex"
    regex: str
    replacement: str
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class RedirectScheme(MiddlewareSpec):
    """``redirectScheme``: to ``scheme`` (required) and ``port`` (default: none, the
    scheme's own; ``80`` for http and ``443`` for https are left out)."""

    KIND: ClassVar[str] = "redirectScheme"
    scheme: str
    port: str = ""
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class IPStrategy:
    """``ipStrategy``: where a request's IP is read (Traefik's ``dynamic.IPStrategy``).
    ``depth`` > 0: the ``depth``-th ``X-Forwarded-For`` entry from the right; else with
    ``excluded_ips``: the rightmost entry not in them; else the peer's address.
    ``ipv6_subnet``: IPv6 addresses grouped by that prefix length."""

    depth: int = 0
    excluded_ips: tuple[str, ...] = ()
    ipv6_subnet: int | None = None


@dataclass(frozen=True, slots=True)
class SourceCriterion:
    """``sourceCriterion``: what groups requests as one source (at most one of the
    three; none: the peer's IP, Traefik's default ``ipStrategy: {}``)."""

    ip_strategy: IPStrategy | None = None
    request_header_name: str = ""
    request_host: bool = False


DEFAULT_RATE_LIMIT_PERIOD = 1.0
"""``rateLimit.period``'s default (Traefik's ``RateLimit.SetDefaults``: one second)."""

DEFAULT_RATE_LIMIT_BURST = 1
"""``rateLimit.burst``'s default (Traefik's ``RateLimit.SetDefaults``)."""


DEFAULT_REDIS_ENDPOINTS: tuple[str, ...] = ("localhost:6379",)
"""``rateLimit.redis.endpoints``' default (Traefik's ``Redis.SetDefaults``)."""

DEFAULT_REDIS_READ_TIMEOUT = 3.0
"""``rateLimit.redis.readTimeout``'s default, seconds (``Redis.SetDefaults``)."""

DEFAULT_REDIS_WRITE_TIMEOUT = 3.0
"""``rateLimit.redis.writeTimeout``'s default, seconds (``Redis.SetDefaults``)."""

DEFAULT_REDIS_DIAL_TIMEOUT = 5.0
"""``rateLimit.redis.dialTimeout``'s default, seconds (``Redis.SetDefaults``; 0 is it too)."""


@dataclass(frozen=True, slots=True)
class Redis:
    """``rateLimit.redis``: the buckets kept in Redis, shared by every gateway and Traefik
    using the same server (Traefik's ``dynamic.Redis``). One endpoint is one server,
    several a Redis Cluster's seed list (go-redis' ``UniversalClient``). ``secret`` names
    the Secret of ``username`` and ``password`` (filled in at resolution, as the TLS
    material of ``tls``). ``pool_size`` 0: 10 connections per CPU; ``max_active_conns``
    0: no limit; ``read_timeout`` / ``write_timeout`` 0: none; ``dial_timeout`` 0: the
    default."""

    endpoints: tuple[str, ...] = DEFAULT_REDIS_ENDPOINTS
    secret: str = ""
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    db: int = 0
    tls: ClientTLS | None = None
    pool_size: int = 0
    min_idle_conns: int = 0
    max_active_conns: int = 0
    read_timeout: float = DEFAULT_REDIS_READ_TIMEOUT
    write_timeout: float = DEFAULT_REDIS_WRITE_TIMEOUT
    dial_timeout: float = DEFAULT_REDIS_DIAL_TIMEOUT


@dataclass(frozen=True, slots=True)
class RateLimit(MiddlewareSpec):
    """``rateLimit``: a token bucket per source filled at ``average / period`` requests
    a second (``average`` 0: no limit), holding ``burst`` (at least 1) tokens; kept in
    this process, or in ``redis`` when given."""

    KIND: ClassVar[str] = "rateLimit"
    average: int = 0
    period: float = DEFAULT_RATE_LIMIT_PERIOD
    burst: int = DEFAULT_RATE_LIMIT_BURST
    source_criterion: SourceCriterion = SourceCriterion()
    redis: Redis | None = None


DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES = 2 * 1024 * 1024
"""``retry.maxRequestBodyBytes``' default (Traefik's ``RetryDefaultMaxRequestBodyBytes``)."""


@dataclass(frozen=True, slots=True)
class Retry(MiddlewareSpec):
    """``retry``: up to ``attempts`` tries, the waits between them growing exponentially
    from ``initial_interval`` (0: none). A try is retried when its connection failed
    before the request was sent (unless ``disable_retry_on_network_error``) or, for an
    idempotent method (any with ``retry_non_idempotent_method``) whose body is at most
    ``max_request_body_bytes`` (-1: any), when its status is in ``status``; never once
    ``timeout`` (0: none) has passed since the first try."""

    KIND: ClassVar[str] = "retry"
    attempts: int
    initial_interval: float = 0.0
    status: StatusRanges = ()
    timeout: float = 0.0
    disable_retry_on_network_error: bool = False
    retry_non_idempotent_method: bool = False
    max_request_body_bytes: int = DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES


COMPRESS_ENCODINGS: tuple[str, ...] = ("gzip", "br", "zstd")
"""``compress.encodings``' default and the encodings Traefik knows (``Compress.SetDefaults``)."""

DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES = 1024
"""``compress.minResponseBodyBytes``' default (0 or less: this default)."""


@dataclass(frozen=True, slots=True)
class Compress(MiddlewareSpec):
    """``compress``: answers of at least ``min_response_body_bytes`` compressed with the
    client's preferred encoding of ``encodings`` (in that priority at equal weight);
    ``default_encoding`` without ``Accept-Encoding`` or for ``*``. At most one of the
    content type lists is non-empty; ``application/grpc`` is always excluded."""

    KIND: ClassVar[str] = "compress"
    excluded_content_types: tuple[str, ...] = ()
    included_content_types: tuple[str, ...] = ()
    min_response_body_bytes: int = DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES
    encodings: tuple[str, ...] = COMPRESS_ENCODINGS
    default_encoding: str = ""


@dataclass(frozen=True, slots=True)
class Buffering(MiddlewareSpec):
    """``buffering`` (oxy's buffer): the whole request read before it is sent (over
    ``max_request_body_bytes``: ``413``), the whole answer read before it is relayed
    (over ``max_response_body_bytes``: refused), each kept in memory up to its
    ``mem_*`` bytes and on disk past them (0 everywhere: no maximum, nothing in memory,
    as Traefik passes its zero values to oxy); a request with a body is sent again while
    ``retry_expression`` holds. ``retry_text``: the expression as written."""

    KIND: ClassVar[str] = "buffering"
    max_request_body_bytes: int = 0
    mem_request_body_bytes: int = 0
    max_response_body_bytes: int = 0
    mem_response_body_bytes: int = 0
    retry_expression: Expression | None = None
    retry_text: str = ""


@dataclass(frozen=True, slots=True)
class ErrorPage(MiddlewareSpec):
    """``errors``: an answer whose status is in ``status`` is replaced by the answer of
    ``service`` to ``GET query`` (``{status}``, ``{originalStatus}``, ``{url}``
    replaced), sent with the status (rewritten by the first of ``status_rewrites`` that
    holds it). ``error_request_headers`` None: every request header is passed on.

    ``service_ref`` is the reference as written; ``service`` the resolved service (set
    by resolution, None until then)."""

    KIND: ClassVar[str] = "errors"
    status: StatusRanges
    service_ref: ServiceRef
    query: str = ""
    status_rewrites: tuple[tuple[StatusRanges, int], ...] = ()
    error_request_headers: tuple[str, ...] | None = None
    service: Service | None = None


@dataclass(frozen=True, slots=True)
class Headers(MiddlewareSpec):
    """``headers`` (Traefik's ``dynamic.Headers``): custom request and response headers
    (an empty value removes the header), CORS (preflights answered by the middleware)
    and the secure headers of ``unrolled/secure``. Header maps keep the names as
    written, in order; Traefik's deprecated ``sslRedirect``, ``sslTemporaryRedirect``,
    ``sslHost``, ``sslForceHost`` and ``featurePolicy`` have no effect in 3.7 and are not
    kept."""

    KIND: ClassVar[str] = "headers"
    custom_request_headers: tuple[tuple[str, str], ...] = ()
    custom_response_headers: tuple[tuple[str, str], ...] = ()
    access_control_allow_credentials: bool = False
    access_control_allow_headers: tuple[str, ...] = ()
    access_control_allow_methods: tuple[str, ...] = ()
    access_control_allow_origin_list: tuple[str, ...] = ()
    access_control_allow_origin_list_regex: tuple[str, ...] = ()
    access_control_expose_headers: tuple[str, ...] = ()
    access_control_max_age: int | None = None
    add_vary_header: bool = False
    allowed_hosts: tuple[str, ...] = ()
    hosts_proxy_headers: tuple[str, ...] = ()
    ssl_proxy_headers: tuple[tuple[str, str], ...] = ()
    sts_seconds: int = 0
    sts_include_subdomains: bool = False
    sts_preload: bool = False
    force_sts_header: bool = False
    frame_deny: bool = False
    custom_frame_options_value: str = ""
    content_type_nosniff: bool = False
    browser_xss_filter: bool = False
    custom_browser_xss_value: str = ""
    content_security_policy: str = ""
    content_security_policy_report_only: str = ""
    public_key: str = ""
    referrer_policy: str = ""
    permissions_policy: str = ""
    is_development: bool = False

    @property
    def has_custom_headers(self) -> bool:
        """Traefik's ``HasCustomHeadersDefined``."""
        return bool(self.custom_request_headers or self.custom_response_headers)

    @property
    def has_cors_headers(self) -> bool:
        """Traefik's ``HasCorsHeadersDefined``."""
        return bool(
            self.access_control_allow_credentials
            or self.access_control_allow_headers
            or self.access_control_allow_methods
            or self.access_control_allow_origin_list
            or self.access_control_allow_origin_list_regex
            or self.access_control_expose_headers
            or self.access_control_max_age is not None
            or self.add_vary_header
        )


@dataclass(frozen=True, slots=True)
class ContentType(MiddlewareSpec):
    """``contentType``: a response without ``Content-Type`` gets the one Go's
    ``http.DetectContentType`` finds in its first bytes (Traefik's entry points
    otherwise send none). ``auto_detect`` false (deprecated): no effect at all."""

    KIND: ClassVar[str] = "contentType"
    auto_detect: bool = True


@dataclass(frozen=True, slots=True)
class EncodedCharacters(MiddlewareSpec):
    """``encodedCharacters``: a request whose escaped path holds one of the encoded
    characters not allowed here is answered ``400`` (every ``allow_*`` false by
    default: all seven refused)."""

    KIND: ClassVar[str] = "encodedCharacters"
    allow_encoded_slash: bool = False
    allow_encoded_back_slash: bool = False
    allow_encoded_null_character: bool = False
    allow_encoded_semicolon: bool = False
    allow_encoded_percent: bool = False
    allow_encoded_question_mark: bool = False
    allow_encoded_hash: bool = False


@dataclass(frozen=True, slots=True)
class SecretAuth(MiddlewareSpec):
    """What ``basicAuth`` and ``digestAuth`` share: the users of Secret ``secret`` (its
    lines, filled in at resolution, as Traefik's CRD provider reads the Secret),
    ``realm`` (default ``traefik``), ``header_field`` (the authenticated user's name
    sent in that request header), ``remove_header`` (``Authorization`` not forwarded)."""

    secret: str
    users: tuple[str, ...] = ()
    realm: str = ""
    header_field: str = ""
    remove_header: bool = False


@dataclass(frozen=True, slots=True)
class BasicAuth(SecretAuth):
    """``basicAuth``: the users are htpasswd lines (``name:hash``)."""

    KIND: ClassVar[str] = "basicAuth"


@dataclass(frozen=True, slots=True)
class DigestAuth(SecretAuth):
    """``digestAuth``: the users are htdigest lines (``name:realm:md5(name:realm:pw)``)."""

    KIND: ClassVar[str] = "digestAuth"


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """``forwardAuth.tls`` and ``rateLimit.redis.tls``: how the server's certificate is
    checked and which client certificate is shown (Secret names until resolution, then
    PEM text)."""

    ca_secret: str = ""
    cert_secret: str = ""
    insecure_skip_verify: bool = False
    ca: str = ""
    cert: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class ForwardAuth(MiddlewareSpec):
    """``forwardAuth``: every request is first asked of ``address``; a 2xx answer lets it
    through (with ``auth_response_headers`` copied onto it), any other is the client's
    answer. ``trust_forward_header`` None is Traefik's legacy behaviour (unset)."""

    KIND: ClassVar[str] = "forwardAuth"
    address: str
    trust_forward_header: bool | None = None
    auth_response_headers: tuple[str, ...] = ()
    auth_response_headers_regex: str = ""
    auth_request_headers: tuple[str, ...] = ()
    add_auth_cookies_to_response: tuple[str, ...] = ()
    header_field: str = ""
    forward_body: bool = False
    max_body_size: int = -1
    max_response_body_size: int = -1
    preserve_location_header: bool = False
    preserve_request_method: bool = False
    auth_signin_url: str = ""
    tls: ClientTLS | None = None


@dataclass(frozen=True, slots=True)
class IPAllowList(MiddlewareSpec):
    """``ipAllowList``: only requests whose IP (``ip_strategy``; none: the peer's) is
    one of ``source_range`` (IPs and CIDRs, at least one) pass; the others are answered
    ``reject_status_code`` (Traefik's default 403) with its status text."""

    KIND: ClassVar[str] = "ipAllowList"
    source_range: tuple[str, ...]
    ip_strategy: IPStrategy | None = None
    reject_status_code: int = 403


@dataclass(frozen=True, slots=True)
class IPWhiteList(MiddlewareSpec):
    """``ipWhiteList``: Traefik's deprecated ``ipAllowList``, always answering 403."""

    KIND: ClassVar[str] = "ipWhiteList"
    source_range: tuple[str, ...]
    ip_strategy: IPStrategy | None = None


@dataclass(frozen=True, slots=True)
class InFlightReq(MiddlewareSpec):
    """``inFlightReq``: at most ``amount`` requests of one source at a time (the source:
    ``source_criterion``, by default the request's host, Traefik's ``requestHost``)."""

    KIND: ClassVar[str] = "inFlightReq"
    amount: int = 0
    source_criterion: SourceCriterion = SourceCriterion(request_host=True)


DEFAULT_CHECK_PERIOD = 0.1
"""``circuitBreaker.checkPeriod``'s default (Traefik's ``CircuitBreaker.SetDefaults``)."""

DEFAULT_FALLBACK_DURATION = 10.0
"""``circuitBreaker.fallbackDuration``'s default (Traefik: 10 s)."""

DEFAULT_RECOVERY_DURATION = 10.0
"""``circuitBreaker.recoveryDuration``'s default (Traefik: 10 s)."""


@dataclass(frozen=True, slots=True)
class CircuitBreaker(MiddlewareSpec):
    """``circuitBreaker``: ``expression`` (oxy's predicate language, checked by the
    reader) trips the breaker; tripped, requests are answered ``response_code`` for
    ``fallback_duration``, then let through on a ramp for ``recovery_duration``."""

    KIND: ClassVar[str] = "circuitBreaker"
    expression: str
    check_period: float = DEFAULT_CHECK_PERIOD
    fallback_duration: float = DEFAULT_FALLBACK_DURATION
    recovery_duration: float = DEFAULT_RECOVERY_DURATION
    response_code: int = 503


@dataclass(frozen=True, slots=True)
class Plugin(MiddlewareSpec):
    """``plugin: {name: {...}}``: the plugin registered as ``name`` and its configuration,
    kept as Traefik's provider hands it over: JSON (its ``json.Marshal`` of the CRD's
    value, keys sorted as Go writes them) with every ``urn:k8s:secret:`` string replaced
    by the Secret's value once resolved. Text, so the spec stays frozen and comparable
    (a reload keeps an unchanged plugin's instances); :attr:`config` gives each caller
    its own copy. Left out of ``repr``: it may hold Secret values."""

    KIND: ClassVar[str] = "plugin"
    name: str
    config_json: str = field(default="{}", repr=False)

    @property
    def config(self) -> dict[str, Any]:
        """The configuration as a new dict (JSON's types: str, int, float, bool, None,
        list, dict)."""
        value: dict[str, Any] = json.loads(self.config_json)
        return value


@dataclass(frozen=True, slots=True)
class MiddlewareRef:
    """A reference to a Middleware: ``routes[].middlewares[]``, a Service reference's
    ``middlewares[]`` or a ``chain.middlewares[]`` entry, as written (``namespace`` None
    when left out; a ``name`` may end in ``@kubernetescrd``)."""

    name: str
    namespace: str | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class ChainSpec(MiddlewareSpec):
    """``chain.middlewares``: references, expanded in place at resolution."""

    KIND: ClassVar[str] = "chain"
    middlewares: tuple[MiddlewareRef, ...]


@dataclass(frozen=True, slots=True)
class MiddlewareResource:
    """One ``Middleware`` document: exactly one kind in its spec. ``unbuildable``: what
    Traefik refuses only for the routers using it, each located and whether Traefik's
    provider skips the Middleware (else building it fails); the spec then holds the value
    as written, and no route may use it."""

    namespace: str
    name: str
    spec: MiddlewareSpec
    origin: Origin
    unbuildable: tuple[tuple[ConfigIssue, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Middleware:
    """A resolved middleware of a route or a service: its Traefik name
    (``default-strip``) and its configuration (never a chain: chains are expanded)."""

    name: str
    spec: MiddlewareSpec
    origin: Origin


MIDDLEWARE_KINDS: tuple[str, ...] = (
    "addPrefix",
    "stripPrefix",
    "stripPrefixRegex",
    "replacePath",
    "replacePathRegex",
    "redirectRegex",
    "redirectScheme",
    "rateLimit",
    "retry",
    "headers",
    "contentType",
    "encodedCharacters",
    "basicAuth",
    "digestAuth",
    "forwardAuth",
    "compress",
    "errors",
    "buffering",
    "ipAllowList",
    "ipWhiteList",
    "inFlightReq",
    "circuitBreaker",
    "plugin",
)
"""The middleware kinds the runtime builds (``chain`` is resolved away)."""
