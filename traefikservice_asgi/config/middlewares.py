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

from ._oxy_predicate import Expression

if TYPE_CHECKING:
    from .models import Origin, Service, ServiceRef

__all__ = [
    "DEFAULT_RATE_LIMIT_BURST",
    "DEFAULT_RATE_LIMIT_PERIOD",
    "DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES",
    "MIDDLEWARE_KINDS",
    "AddPrefix",
    "Buffering",
    "ChainSpec",
    "COMPRESS_ENCODINGS",
    "Compress",
    "DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES",
    "ErrorPage",
    "StatusRanges",
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
    "SourceCriterion",
    "StripPrefix",
    "StripPrefixRegex",
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


@dataclass(frozen=True, slots=True)
class RateLimit(MiddlewareSpec):
    """``rateLimit``: a token bucket per source filled at ``average / period`` requests
    a second (``average`` 0: no limit), holding ``burst`` (at least 1) tokens."""

    KIND: ClassVar[str] = "rateLimit"
    average: int = 0
    period: float = DEFAULT_RATE_LIMIT_PERIOD
    burst: int = DEFAULT_RATE_LIMIT_BURST
    source_criterion: SourceCriterion = SourceCriterion()


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
    "compress",
    "errors",
    "buffering",
)
"""The middleware kinds the runtime builds (``chain`` is resolved away)."""
