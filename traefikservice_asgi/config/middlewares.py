"""The ``Middleware`` resource as inert data: one frozen spec class per middleware kind.

Each spec class names its kind as Traefik's CRD spells the key (``addPrefix``,
``stripPrefix``...) in ``KIND``; the runtime class of that kind is found by it in
:data:`traefikservice_asgi.middlewares.MIDDLEWARES` (the config layer does not import the
runtime; ``tests/middlewares/test_registry.py`` keeps :data:`MIDDLEWARE_KINDS` and that
registry equal). A ``chain`` is expanded at resolution, so the resolved route holds its
middlewares in order, flat, as Traefik's ``BuildMiddlewareChain`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .models import Origin

__all__ = [
    "DEFAULT_RATE_LIMIT_BURST",
    "DEFAULT_RATE_LIMIT_PERIOD",
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
    "Retry",
    "SecretAuth",
    "SourceCriterion",
    "StripPrefix",
    "StripPrefixRegex",
]


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


@dataclass(frozen=True, slots=True)
class RateLimit(MiddlewareSpec):
    """``rateLimit``: a token bucket per source filled at ``average / period`` requests
    a second (``average`` 0: no limit), holding ``burst`` (at least 1) tokens."""

    KIND: ClassVar[str] = "rateLimit"
    average: int = 0
    period: float = DEFAULT_RATE_LIMIT_PERIOD
    burst: int = DEFAULT_RATE_LIMIT_BURST
    source_criterion: SourceCriterion = SourceCriterion()


@dataclass(frozen=True, slots=True)
class Retry(MiddlewareSpec):
    """``retry``: up to ``attempts`` tries of a request whose connection to its server
    failed before the request was sent, the waits between them growing exponentially
    from ``initial_interval`` (0: none)."""

    KIND: ClassVar[str] = "retry"
    attempts: int
    initial_interval: float = 0.0


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
    """``forwardAuth.tls``: how the auth server's certificate is checked and which client
    certificate is shown (Secret names until resolution, then PEM text)."""

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
    """One ``Middleware`` document: exactly one kind in its spec."""

    namespace: str
    name: str
    spec: MiddlewareSpec
    origin: Origin


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
)
"""The middleware kinds the runtime builds (``chain`` is resolved away)."""
