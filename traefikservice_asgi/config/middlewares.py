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
    "ChainSpec",
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
    "Retry",
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
    "ipAllowList",
    "ipWhiteList",
    "inFlightReq",
    "circuitBreaker",
)
"""The middleware kinds the runtime builds (``chain`` is resolved away)."""
