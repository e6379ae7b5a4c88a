"""``Middleware`` (Traefik's ``pkg/provider/kubernetes/crd/traefikio/v1alpha1/
middleware.go``) and the references to it (``MiddlewareRef``: ``name``, ``namespace``).

A Middleware's spec holds exactly one kind. Each kind read here has one reader in
:data:`SPEC_READERS` (the spec key -> a function reading that key's value into the
kind's frozen model of :mod:`..middlewares`); adding a middleware is one reader here, one
model there, and one runtime class in ``traefikservice_asgi/middlewares/`` (see the guide
"Middlewares"). A kind Traefik knows and this package does not build yet is an error
naming it (:data:`NOT_IMPLEMENTED`), never dropped in silence.
"""

from __future__ import annotations

import http
import ipaddress
from collections.abc import Callable
from typing import Any

from ...rules._re2 import RegexError, compile_re2
from .._fields import Reader, show
from .._predicate import PredicateError, parse_predicate
from .._yaml import Path
from ..middlewares import (
    DEFAULT_CHECK_PERIOD,
    DEFAULT_FALLBACK_DURATION,
    DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PERIOD,
    DEFAULT_RECOVERY_DURATION,
    AddPrefix,
    ChainSpec,
    CircuitBreaker,
    InFlightReq,
    IPAllowList,
    IPStrategy,
    IPWhiteList,
    MiddlewareRef,
    MiddlewareResource,
    MiddlewareSpec,
    RateLimit,
    RedirectRegex,
    RedirectScheme,
    ReplacePath,
    ReplacePathRegex,
    Retry,
    SourceCriterion,
    StripPrefix,
    StripPrefixRegex,
)

__all__ = ["NOT_IMPLEMENTED", "SPEC_READERS", "middleware", "middleware_refs"]

SpecReader = Callable[[Reader, Any, Path], "MiddlewareSpec | None"]


def middleware_refs(
    r: Reader, m: dict[str, Any], path: Path, key: str
) -> tuple[MiddlewareRef, ...]:
    """``key``'s list of ``{name, namespace}`` references (namespace None when left
    out: resolution defaults it, as Traefik's ``resolveReference``)."""
    refs: list[MiddlewareRef] = []
    for i, item in enumerate(r.items(m, path, key)):
        ipath: Path = (*path, key, i)
        im = r.mapping(item, ipath, {"name", "namespace"})
        if im is None:
            continue
        name = r.string(im, ipath, "name", required=True)
        namespace = r.string(im, ipath, "namespace")
        if name:
            refs.append(MiddlewareRef(name, namespace or None, r.origin(ipath)))
    return tuple(refs)


def _add_prefix(r: Reader, value: Any, path: Path) -> AddPrefix | None:
    m = r.mapping(value, path, {"prefix"})
    if m is None:
        return None
    prefix = m.get("prefix")
    if not isinstance(prefix, str) or not prefix:
        # Traefik: "prefix cannot be empty", the router is then disabled.
        r.error((*path, "prefix"), f"prefix cannot be empty (got {show(prefix)})")
        return None
    return AddPrefix(prefix)


def _strings(r: Reader, m: dict[str, Any], path: Path, key: str) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(r.items(m, path, key)):
        if not isinstance(item, str):
            r.error((*path, key, i), f"must be a string, got {show(item)}")
        else:
            out.append(item)
    return tuple(out)


def _strip_prefix(r: Reader, value: Any, path: Path) -> StripPrefix | None:
    m = r.mapping(value, path, {"prefixes", "forceSlash"})
    if m is None:
        return None
    if m.get("forceSlash") is not None:
        r.warn((*path, "forceSlash"), "deprecated (Traefik: it will be removed)")
    prefixes = tuple(p.strip() for p in _strings(r, m, path, "prefixes"))
    return StripPrefix(prefixes, r.boolean(m, path, "forceSlash", False))


def _replace_path(r: Reader, value: Any, path: Path) -> ReplacePath | None:
    m = r.mapping(value, path, {"path"})
    if m is None:
        return None
    replaced = m.get("path", "")
    if replaced is None:
        replaced = ""
    if not isinstance(replaced, str):
        r.error((*path, "path"), f"must be a string, got {show(replaced)}")
        return None
    return ReplacePath(replaced)


def _regex(r: Reader, path: Path, pattern: str) -> bool:
    """Whether Go's ``regexp.Compile`` takes ``pattern`` (an error at ``path`` if not)."""
    try:
        compile_re2(pattern)
    except RegexError as exc:
        r.error(path, f"invalid regexp {show(pattern)}: error parsing regexp: {exc.message}")
        return False
    return True


def _text(r: Reader, m: dict[str, Any], path: Path, key: str) -> str | None:
    """``key``'s string ("" when left out), None (an error) when not a string."""
    value = m.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        r.error((*path, key), f"must be a string, got {show(value)}")
        return None
    return value


def _strip_prefix_regex(r: Reader, value: Any, path: Path) -> StripPrefixRegex | None:
    m = r.mapping(value, path, {"regex"})
    if m is None:
        return None
    patterns = tuple(p.strip() for p in _strings(r, m, path, "regex"))
    ok = [_regex(r, (*path, "regex", i), p) for i, p in enumerate(patterns)]
    return StripPrefixRegex(patterns) if all(ok) else None


def _replace_path_regex(r: Reader, value: Any, path: Path) -> ReplacePathRegex | None:
    m = r.mapping(value, path, {"regex", "replacement"})
    if m is None:
        return None
    regex, replacement = _text(r, m, path, "regex"), _text(r, m, path, "replacement")
    if regex is None or replacement is None or not _regex(r, (*path, "regex"), regex.strip()):
        return None
    return ReplacePathRegex(regex.strip(), replacement.strip())


def _redirect_regex(r: Reader, value: Any, path: Path) -> RedirectRegex | None:
    m = r.mapping(value, path, {"regex", "replacement", "permanent"})
    if m is None:
        return None
    regex, replacement = _text(r, m, path, "regex"), _text(r, m, path, "replacement")
    permanent = r.boolean(m, path, "permanent", False)
    if regex is None or replacement is None or not _regex(r, (*path, "regex"), regex):
        return None
    return RedirectRegex(regex, replacement, permanent)


def _redirect_scheme(r: Reader, value: Any, path: Path) -> RedirectScheme | None:
    m = r.mapping(value, path, {"scheme", "port", "permanent"})
    if m is None:
        return None
    scheme, port = _text(r, m, path, "scheme"), _text(r, m, path, "port")
    permanent = r.boolean(m, path, "permanent", False)
    if scheme == "":
        # Traefik: "you must provide a target scheme", the router is then disabled.
        r.error((*path, "scheme"), "you must provide a target scheme")
    if not scheme or port is None:
        return None
    return RedirectScheme(scheme, port, permanent)


def ip_or_cidr(text: str) -> bool:
    """Whether Go's ``ip.NewChecker`` takes ``text`` (an IP or a CIDR)."""
    try:
        if "/" in text:
            bits = text.rpartition("/")[2]
            if not bits.isdigit() or not bits.isascii() or (bits != "0" and bits[0] == "0"):
                return False  # Go: a prefix length in decimal, no netmask, no leading 0
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


def _ip_strategy(r: Reader, value: Any, path: Path) -> IPStrategy | None:
    m = r.mapping(value, path, {"depth", "excludedIPs", "ipv6Subnet"})
    if m is None:
        return None
    depth = r.integer(m, path, "depth", minimum=0) or 0
    excluded = _strings(r, m, path, "excludedIPs")
    for i, text in enumerate(excluded):
        if not ip_or_cidr(text):
            r.error((*path, "excludedIPs", i), f"not an IP or a CIDR, got {show(text)}")
    subnet = r.integer(m, path, "ipv6Subnet")
    if subnet is not None and (depth > 0 or not excluded) and not 0 < subnet <= 128:
        r.error(
            (*path, "ipv6Subnet"),
            f"invalid IPv6 subnet {subnet} value, should be greater to 0 and lower or equal to 128",
        )
    return IPStrategy(depth, excluded, subnet)


def source_criterion(r: Reader, m: dict[str, Any], path: Path) -> SourceCriterion:
    """``sourceCriterion`` under ``path``: the three ways are mutually exclusive (as
    Traefik's ``GetSourceExtractor``); left out, the peer's IP."""
    value = m.get("sourceCriterion")
    if value is None:
        return SourceCriterion()
    path = (*path, "sourceCriterion")
    sm = r.mapping(value, path, {"ipStrategy", "requestHeaderName", "requestHost"})
    if sm is None:
        return SourceCriterion()
    strategy = None
    if sm.get("ipStrategy") is not None:
        strategy = _ip_strategy(r, sm["ipStrategy"], (*path, "ipStrategy"))
    header = sm.get("requestHeaderName") or ""
    if not isinstance(header, str):
        r.error((*path, "requestHeaderName"), f"must be a string, got {show(header)}")
        header = ""
    host = r.boolean(sm, path, "requestHost", False)
    given = [
        name
        for name, on in (
            ("ipStrategy", sm.get("ipStrategy") is not None),
            ("requestHeaderName", bool(header)),
            ("requestHost", host),
        )
        if on
    ]
    if len(given) > 1:
        r.error(path, f"{given[0]} and {given[1]} are mutually exclusive (Traefik)")
    return SourceCriterion(strategy, header, host)


def _rate_limit(r: Reader, value: Any, path: Path) -> RateLimit | None:
    m = r.mapping(value, path, {"average", "period", "burst", "sourceCriterion"}, _REDIS)
    if m is None:
        return None
    average = r.integer(m, path, "average")
    burst = r.integer(m, path, "burst")
    period = r.duration(m, path, "period")
    criterion = source_criterion(r, m, path)
    return RateLimit(
        average=average or 0,
        period=period or DEFAULT_RATE_LIMIT_PERIOD,  # Traefik: 0 is one second
        burst=max(burst if burst is not None else DEFAULT_RATE_LIMIT_BURST, 1),
        source_criterion=criterion,
    )


_RETRY_LATER = {
    key: f"retry.{key} is not implemented yet (network errors are retried)"
    for key in ("status", "timeout", "disableRetryOnNetworkError")
}


def _retry(r: Reader, value: Any, path: Path) -> Retry | None:
    known = {"attempts", "initialInterval", "maxRequestBodyBytes", "retryNonIdempotentMethod"}
    m = r.mapping(value, path, known, _RETRY_LATER)
    if m is None:
        return None
    attempts = r.integer(m, path, "attempts")
    if attempts is None or attempts <= 0:
        # Traefik: "incorrect (or empty) value for attempt", the router is disabled.
        r.error((*path, "attempts"), f"incorrect (or empty) value for attempt ({attempts or 0})")
        return None
    interval = r.duration(m, path, "initialInterval")
    # Both only matter with `status` (a body kept for replays, POST retried on a status).
    r.integer(m, path, "maxRequestBodyBytes")
    r.boolean(m, path, "retryNonIdempotentMethod", False)
    return Retry(attempts, interval or 0.0)


def _source_range(r: Reader, m: dict[str, Any], path: Path, lister: str) -> tuple[str, ...] | None:
    """``sourceRange``: Traefik refuses an empty one and any entry ``ip.NewChecker`` does
    not parse (an IP, else a CIDR)."""
    given = m.get("sourceRange") or []
    ranges = _strings(r, m, path, "sourceRange")
    if not given:
        r.error((*path, "sourceRange"), f"sourceRange is empty, {lister} not created")
        return None
    bad = [i for i, text in enumerate(ranges) if not ip_or_cidr(text)]
    for i in bad:
        r.error(
            (*path, "sourceRange", i),
            f"cannot parse CIDRs [{' '.join(ranges)}]: parsing CIDR trusted IPs <nil>: "
            f"invalid CIDR address: {ranges[i]}",
        )
    return None if bad or len(ranges) != len(given) else ranges


def _strategy(r: Reader, m: dict[str, Any], path: Path) -> IPStrategy | None:
    if m.get("ipStrategy") is None:
        return None  # Traefik's RemoteAddrStrategy (an empty ipStrategy: the same)
    return _ip_strategy(r, m["ipStrategy"], (*path, "ipStrategy"))


def _ip_allow_list(r: Reader, value: Any, path: Path) -> IPAllowList | None:
    m = r.mapping(value, path, {"sourceRange", "ipStrategy", "rejectStatusCode"})
    if m is None:
        return None
    ranges = _source_range(r, m, path, "IPAllowLister")
    strategy = _strategy(r, m, path)
    code = r.integer(m, path, "rejectStatusCode")
    # Go's http.StatusText names the same codes as Python's HTTPStatus (a test keeps
    # the two tables equal); 0 is Traefik's default, 403.
    if code is not None and code != 0 and code not in _STATUS_CODES:
        r.error((*path, "rejectStatusCode"), f"invalid HTTP status code {code}")
        return None
    if ranges is None:
        return None
    return IPAllowList(ranges, strategy, code or 403)


def _ip_white_list(r: Reader, value: Any, path: Path) -> IPWhiteList | None:
    m = r.mapping(value, path, {"sourceRange", "ipStrategy"})
    if m is None:
        return None
    r.warn(path, "deprecated (Traefik: use ipAllowList)")
    ranges = _source_range(r, m, path, "IPWhiteLister")
    strategy = _strategy(r, m, path)
    return None if ranges is None else IPWhiteList(ranges, strategy)


_STATUS_CODES = frozenset(status.value for status in http.HTTPStatus)


def _in_flight_req(r: Reader, value: Any, path: Path) -> InFlightReq | None:
    m = r.mapping(value, path, {"amount", "sourceCriterion"})
    if m is None:
        return None
    amount = r.integer(m, path, "amount", minimum=0)
    criterion = source_criterion(r, m, path)
    if criterion == SourceCriterion():
        # Traefik's inFlightReq groups by host when no criterion is given.
        criterion = SourceCriterion(request_host=True)
    return InFlightReq(amount or 0, criterion)


def _circuit_breaker(r: Reader, value: Any, path: Path) -> CircuitBreaker | None:
    known = {"expression", "checkPeriod", "fallbackDuration", "recoveryDuration", "responseCode"}
    m = r.mapping(value, path, known)
    if m is None:
        return None
    expression = _text(r, m, path, "expression")
    check, fallback, recovery = (
        r.duration(m, path, "checkPeriod"),
        r.duration(m, path, "fallbackDuration"),
        r.duration(m, path, "recoveryDuration"),
    )
    code = r.integer(m, path, "responseCode", minimum=100, maximum=599)
    if expression is None:
        return None
    try:
        parse_predicate(expression)
    except PredicateError as exc:
        r.error((*path, "expression"), f"invalid expression {show(expression)}: {exc}")
        return None
    return CircuitBreaker(
        expression,
        # Traefik passes only a positive duration to oxy, whose defaults are its own.
        check_period=check if check and check > 0 else DEFAULT_CHECK_PERIOD,
        fallback_duration=fallback if fallback and fallback > 0 else DEFAULT_FALLBACK_DURATION,
        recovery_duration=recovery if recovery and recovery > 0 else DEFAULT_RECOVERY_DURATION,
        response_code=code or 503,
    )


_REDIS = {"redis": "a rate limiter's Redis store (the buckets are in memory, per route)"}


def _chain(r: Reader, value: Any, path: Path) -> ChainSpec | None:
    m = r.mapping(value, path, {"middlewares"})
    if m is None:
        return None
    return ChainSpec(middleware_refs(r, m, path, "middlewares"))


SPEC_READERS: dict[str, SpecReader] = {
    "addPrefix": _add_prefix,
    "stripPrefix": _strip_prefix,
    "stripPrefixRegex": _strip_prefix_regex,
    "replacePath": _replace_path,
    "replacePathRegex": _replace_path_regex,
    "redirectRegex": _redirect_regex,
    "redirectScheme": _redirect_scheme,
    "rateLimit": _rate_limit,
    "retry": _retry,
    "ipAllowList": _ip_allow_list,
    "ipWhiteList": _ip_white_list,
    "inFlightReq": _in_flight_req,
    "circuitBreaker": _circuit_breaker,
    "chain": _chain,
}
"""The spec key of each middleware kind read here -> its reader."""

NOT_IMPLEMENTED: dict[str, str] = {
    key: f"the {key} middleware is not implemented yet"
    for key in [
        "addPrefix",
        "stripPrefix",
        "stripPrefixRegex",
        "replacePath",
        "replacePathRegex",
        "chain",
        "ipWhiteList",
        "ipAllowList",
        "headers",
        "encodedCharacters",
        "errors",
        "rateLimit",
        "redirectRegex",
        "redirectScheme",
        "basicAuth",
        "digestAuth",
        "forwardAuth",
        "inFlightReq",
        "buffering",
        "circuitBreaker",
        "compress",
        "passTLSClientCert",
        "retry",
        "contentType",
        "grpcWeb",
        "plugin",
    ]
    if key not in SPEC_READERS
}
"""Traefik 3.7's other middleware kinds (``MiddlewareSpec``): refused, each by name."""


def middleware(r: Reader, spec: Any, namespace: str, name: str) -> MiddlewareResource | None:
    m = r.mapping(spec, ("spec",), SPEC_READERS, NOT_IMPLEMENTED)
    if m is None:
        return None
    kinds = [key for key in m if key in SPEC_READERS or key in NOT_IMPLEMENTED]
    if len(kinds) > 1:
        r.error(
            ("spec", kinds[1]),
            f"a Middleware has one type, got {', '.join(kinds)} (Traefik: multi-types "
            "middleware not supported, consider declaring two different pieces of "
            "middleware instead)",
        )
        return None
    if not kinds:
        r.error(("spec",), "a Middleware needs a type (addPrefix, stripPrefix, headers...)")
        return None
    kind = kinds[0]
    if kind not in SPEC_READERS:
        return None  # reported by the mapping
    parsed = SPEC_READERS[kind](r, m[kind], ("spec", kind))
    if parsed is None:
        return None
    return MiddlewareResource(namespace, name, parsed, r.origin(()))
