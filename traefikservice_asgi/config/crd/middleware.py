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
import re
from collections.abc import Callable
from typing import Any

from ...rules._re2 import RegexError, compile_re2
from .._fields import Reader, show
from .._mime import MediaTypeError, parse_media_type
from .._oxy_predicate import PredicateError as RetryExpressionError
from .._oxy_predicate import parse as parse_retry_expression
from .._predicate import PredicateError, parse_predicate
from .._yaml import Path
from ..middlewares import (
    COMPRESS_ENCODINGS,
    DEFAULT_CHECK_PERIOD,
    DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES,
    DEFAULT_FALLBACK_DURATION,
    DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PERIOD,
    DEFAULT_RECOVERY_DURATION,
    DEFAULT_REDIS_DIAL_TIMEOUT,
    DEFAULT_REDIS_ENDPOINTS,
    DEFAULT_REDIS_READ_TIMEOUT,
    DEFAULT_REDIS_WRITE_TIMEOUT,
    DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES,
    AddPrefix,
    BasicAuth,
    Buffering,
    ChainSpec,
    CircuitBreaker,
    ClientTLS,
    Compress,
    ContentType,
    DigestAuth,
    EncodedCharacters,
    ErrorPage,
    ForwardAuth,
    InFlightReq,
    IPAllowList,
    IPStrategy,
    IPWhiteList,
    MiddlewareResource,
    MiddlewareSpec,
    RateLimit,
    RedirectRegex,
    RedirectScheme,
    Redis,
    ReplacePath,
    ReplacePathRegex,
    Retry,
    SourceCriterion,
    StatusRanges,
    StripPrefix,
    StripPrefixRegex,
)
from .headers import headers
from .middlewareref import middleware_refs
from .plugin import plugin
from .serviceref import service_ref

__all__ = ["NAMESPACED_READERS", "NOT_IMPLEMENTED", "SPEC_READERS", "middleware", "middleware_refs"]

SpecReader = Callable[[Reader, Any, Path], "MiddlewareSpec | None"]
NamespacedReader = Callable[[Reader, Any, Path, str], "MiddlewareSpec | None"]


def _add_prefix(r: Reader, value: Any, path: Path) -> AddPrefix | None:
    m = r.mapping(value, path, {"prefix"})
    if m is None:
        return None
    prefix = m.get("prefix")
    if prefix is None:
        # Traefik's addprefix.New: "prefix cannot be empty", its routers are not served.
        r.cannot_build((*path, "prefix"), "prefix cannot be empty")
        return AddPrefix("")
    if not isinstance(prefix, str) or not prefix:
        # The CRD's rule (self.startsWith('/')): the Kubernetes API refuses the resource.
        r.error((*path, "prefix"), f"prefix cannot be empty (got {show(prefix)})")
        return None
    return AddPrefix(prefix)


def _strings(r: Reader, m: dict[str, Any], path: Path, key: str) -> tuple[str, ...]:
    return r.strings(m, path, key)


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


def _regex(r: Reader, path: Path, pattern: str) -> None:
    """Go's ``regexp.Compile`` of ``pattern``, which Traefik runs when it builds the
    middleware for a router (``New``): a pattern it refuses is kept for the resolver."""
    try:
        compile_re2(pattern)
    except RegexError as exc:
        r.cannot_build(path, f"invalid regexp {show(pattern)}: error parsing regexp: {exc.message}")


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
    for i, pattern in enumerate(patterns):
        _regex(r, (*path, "regex", i), pattern)
    return StripPrefixRegex(patterns)


def _replace_path_regex(r: Reader, value: Any, path: Path) -> ReplacePathRegex | None:
    m = r.mapping(value, path, {"regex", "replacement"})
    if m is None:
        return None
    regex, replacement = _text(r, m, path, "regex"), _text(r, m, path, "replacement")
    if regex is None or replacement is None:
        return None
    _regex(r, (*path, "regex"), regex.strip())
    return ReplacePathRegex(regex.strip(), replacement.strip())


def _redirect_regex(r: Reader, value: Any, path: Path) -> RedirectRegex | None:
    m = r.mapping(value, path, {"regex", "replacement", "permanent"})
    if m is None:
        return None
    regex, replacement = _text(r, m, path, "regex"), _text(r, m, path, "replacement")
    permanent = r.boolean(m, path, "permanent", False)
    if regex is None or replacement is None:
        return None
    _regex(r, (*path, "regex"), regex)
    return RedirectRegex(regex, replacement, permanent)


def _redirect_scheme(r: Reader, value: Any, path: Path) -> RedirectScheme | None:
    m = r.mapping(value, path, {"scheme", "port", "permanent"})
    if m is None:
        return None
    scheme, port = _text(r, m, path, "scheme"), _text(r, m, path, "port")
    permanent = r.boolean(m, path, "permanent", False)
    if scheme == "":
        # Traefik's NewRedirectScheme: its routers are not served.
        r.cannot_build((*path, "scheme"), "you must provide a target scheme")
    if scheme is None or port is None:
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
    # IPStrategy.Get, which each kind's New calls: its routers are not served.
    for i, text in enumerate(excluded):
        if not ip_or_cidr(text):
            r.cannot_build((*path, "excludedIPs", i), f"not an IP or a CIDR, got {show(text)}")
    subnet = r.integer(m, path, "ipv6Subnet")
    if subnet is not None and (depth > 0 or not excluded) and not 0 < subnet <= 128:
        r.cannot_build(
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
    if len(given) > 1:  # GetSourceExtractor, in New: its routers are not served
        r.cannot_build(path, f"{given[0]} and {given[1]} are mutually exclusive (Traefik)")
    return SourceCriterion(strategy, header, host)


def _rate_limit(r: Reader, value: Any, path: Path) -> RateLimit | None:
    m = r.mapping(value, path, {"average", "period", "burst", "sourceCriterion", "redis"})
    if m is None:
        return None
    average = r.integer(m, path, "average")
    burst = r.integer(m, path, "burst")
    period = r.duration(m, path, "period")
    criterion = source_criterion(r, m, path)
    redis = None
    if m.get("redis") is not None:
        redis = _redis(r, m["redis"], (*path, "redis"))
        if redis is None:
            return None
    return RateLimit(
        average=average or 0,
        period=period or DEFAULT_RATE_LIMIT_PERIOD,  # Traefik: 0 is one second
        burst=max(burst if burst is not None else DEFAULT_RATE_LIMIT_BURST, 1),
        source_criterion=criterion,
        redis=redis,
    )


_REDIS_FIELDS = {
    "endpoints",
    "tls",
    "secret",
    "db",
    "poolSize",
    "minIdleConns",
    "maxActiveConns",
    "readTimeout",
    "writeTimeout",
    "dialTimeout",
}


def _redis(r: Reader, value: Any, path: Path) -> Redis | None:
    """``rateLimit.redis`` as ``createRateLimitMiddleware`` fills Traefik's
    ``dynamic.Redis``: its defaults, then what is given. Stricter than Traefik where it
    would build a client that fails every request (500): an endpoint without a port,
    a negative pool size or database are errors here."""
    m = r.mapping(value, path, _REDIS_FIELDS)
    if m is None:
        return None
    endpoints = _strings(r, m, path, "endpoints") or DEFAULT_REDIS_ENDPOINTS
    for i, endpoint in enumerate(endpoints if m.get("endpoints") else ()):
        if split_host_port(endpoint) is None:
            r.error((*path, "endpoints", i), f"must be host:port, got {show(endpoint)}")
    secret = _text(r, m, path, "secret")
    tls = None
    if m.get("tls") is not None:
        tls = _client_tls(r, m["tls"], (*path, "tls"), _REDIS_TLS_FIELDS)
    sizes = {key: r.integer(m, path, key, minimum=0) for key in _REDIS_SIZES}
    timeouts = {key: r.duration(m, path, key) for key in _REDIS_TIMEOUTS}
    if tls is not None and len(endpoints) > 1:
        r.error(
            (*path, "tls"),
            "not supported by traefikservice-asgi: TLS towards a Redis Cluster (several "
            "endpoints); TLS is supported towards one endpoint",
        )
        return None
    if secret is None or (m.get("tls") is not None and tls is None):
        return None
    read, write, dial = (timeouts[key] for key in _REDIS_TIMEOUTS)
    return Redis(
        endpoints=endpoints,
        secret=secret,
        db=sizes["db"] or 0,
        tls=tls,
        pool_size=sizes["poolSize"] or 0,
        min_idle_conns=sizes["minIdleConns"] or 0,
        max_active_conns=sizes["maxActiveConns"] or 0,
        read_timeout=DEFAULT_REDIS_READ_TIMEOUT if read is None else read,
        write_timeout=DEFAULT_REDIS_WRITE_TIMEOUT if write is None else write,
        # go-redis takes its own default for a dial timeout of 0, the same 5 s.
        dial_timeout=dial or DEFAULT_REDIS_DIAL_TIMEOUT,
    )


_REDIS_TLS_FIELDS = {"caSecret", "certSecret", "insecureSkipVerify"}
_REDIS_SIZES = ("db", "poolSize", "minIdleConns", "maxActiveConns")
_REDIS_TIMEOUTS = ("readTimeout", "writeTimeout", "dialTimeout")


def split_host_port(address: str) -> tuple[str, int] | None:
    """Go's ``net.SplitHostPort`` with a numeric port (what go-redis dials): ``host:port``
    or ``[v6]:port``; None for anything else."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        if not sep or "]" in host:
            return None
    else:
        host, sep, port = address.rpartition(":")
        if not sep or ":" in host:
            return None
    if not port.isdigit() or not port.isascii() or int(port) > 65535:
        return None
    return host, int(port)


def _retry(r: Reader, value: Any, path: Path) -> Retry | None:
    known = {
        "attempts",
        "initialInterval",
        "timeout",
        "maxRequestBodyBytes",
        "status",
        "disableRetryOnNetworkError",
        "retryNonIdempotentMethod",
    }
    m = r.mapping(value, path, known)
    if m is None:
        return None
    status: list[tuple[int, int]] = []
    for i, item in enumerate(r.items(m, path, "status")):
        status.extend(_code_ranges(r, (*path, "status", i), item) or ())
    disable = r.boolean(m, path, "disableRetryOnNetworkError", False)
    if disable and not r.items(m, path, "status"):
        r.cannot_build(
            (*path, "disableRetryOnNetworkError"),
            "retry middleware requires at least HTTP status codes or retry on TCP",
        )
    attempts = r.integer(m, path, "attempts", minimum=0)  # the CRD's minimum
    if attempts is None and m.get("attempts") is not None:
        return None  # reported
    if not attempts:
        # Traefik's retry.New: "incorrect (or empty) value for attempt".
        r.cannot_build((*path, "attempts"), "incorrect (or empty) value for attempt (0)")
    max_body = r.integer(m, path, "maxRequestBodyBytes", minimum=-1)
    return Retry(
        attempts or 0,
        initial_interval=r.duration(m, path, "initialInterval") or 0.0,
        status=tuple(status),
        timeout=r.duration(m, path, "timeout") or 0.0,
        disable_retry_on_network_error=disable,
        retry_non_idempotent_method=r.boolean(m, path, "retryNonIdempotentMethod", False),
        max_request_body_bytes=(
            DEFAULT_RETRY_MAX_REQUEST_BODY_BYTES if max_body is None else max_body
        ),
    )


def _media_types(r: Reader, m: dict[str, Any], path: Path, key: str, what: str) -> tuple[str, ...]:
    """``key``'s content types, each one Go's ``mime.ParseMediaType`` takes."""
    types = _strings(r, m, path, key)
    for i, text in enumerate(types):
        try:
            parse_media_type(text)
        except MediaTypeError as exc:
            r.cannot_build((*path, key, i), f"parsing {what} media type: {exc} (got {show(text)})")
    return types


def _compress(r: Reader, value: Any, path: Path) -> Compress | None:
    known = {
        "excludedContentTypes",
        "includedContentTypes",
        "minResponseBodyBytes",
        "encodings",
        "defaultEncoding",
    }
    m = r.mapping(value, path, known)
    if m is None:
        return None
    excluded = _media_types(r, m, path, "excludedContentTypes", "excluded")
    included = _media_types(r, m, path, "includedContentTypes", "included")
    if excluded and included:
        r.cannot_build(
            (*path, "includedContentTypes"),
            "excludedContentTypes and includedContentTypes options are mutually exclusive",
        )
    # The CRD's minimum is 0; Traefik takes 0 for its default.
    min_bytes = r.integer(m, path, "minResponseBodyBytes", minimum=0)
    encodings = COMPRESS_ENCODINGS
    if m.get("encodings") is not None:
        encodings = _strings(r, m, path, "encodings")
        if not encodings and isinstance(m["encodings"], list):
            r.cannot_build((*path, "encodings"), "at least one encoding must be specified")
        for i, encoding in enumerate(encodings):
            if encoding not in COMPRESS_ENCODINGS:
                r.cannot_build((*path, "encodings", i), f"unsupported encoding: {encoding}")
    default = _text(r, m, path, "defaultEncoding")
    if default and default not in encodings:
        r.cannot_build((*path, "defaultEncoding"), f"unsupported default encoding: {default}")
    return Compress(
        excluded_content_types=excluded,
        included_content_types=included,
        min_response_body_bytes=min_bytes or DEFAULT_COMPRESS_MIN_RESPONSE_BODY_BYTES,
        encodings=encodings,
        default_encoding=default or "",
    )


_STATUS_PATTERN = re.compile(r"([1-5][0-9]{2}[,-]?)+")  # the CRD's validation pattern


def _code_ranges(r: Reader, path: Path, text: Any) -> StatusRanges | None:
    """Traefik's ``types.NewHTTPCodeRanges`` for one string: a code or ``low-high`` (a
    third part is ignored, as Go). The CRD's pattern allows commas ("404,500-599"),
    which Traefik 3.7 does not split: ``strconv.Atoi`` refuses them."""
    if not isinstance(text, str) or not _STATUS_PATTERN.fullmatch(text):
        r.error(path, f'must be a status or a range like "500-599", got {show(text)}')
        return None
    codes = text.split("-")
    if len(codes) == 1:
        codes.append(codes[0])
    for code in codes[:2]:
        if not code.isdigit():  # in the middleware's New: its routers are not served
            r.cannot_build(path, f'strconv.Atoi: parsing "{code}": invalid syntax')
            return None
    return ((int(codes[0]), int(codes[1])),)


def _errors(r: Reader, value: Any, path: Path, namespace: str) -> ErrorPage | None:
    known = {"status", "statusRewrites", "service", "query", "errorRequestHeaders"}
    m = r.mapping(value, path, known)
    if m is None:
        return None
    status: list[tuple[int, int]] = []
    for i, item in enumerate(r.items(m, path, "status")):
        status.extend(_code_ranges(r, (*path, "status", i), item) or ())
    rewrites: list[tuple[StatusRanges, int]] = []
    raw_rewrites = m.get("statusRewrites")
    if raw_rewrites is not None and not isinstance(raw_rewrites, dict):
        r.error((*path, "statusRewrites"), f"must be a mapping, got {show(raw_rewrites)}")
    for key, code in (raw_rewrites or {}).items() if isinstance(raw_rewrites, dict) else ():
        kpath = (*path, "statusRewrites", str(key))
        ranges = _code_ranges(r, kpath, str(key))
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
            # Go's server refuses to write any other (WriteHeader panics).
            r.error(kpath, f"must be a status code from 100 to 999, got {show(code)}")
        elif ranges is not None:
            rewrites.append((ranges, code))
    if m.get("service") is None:
        r.error((*path, "service"), "required field is missing")
        ref = None
    else:
        ref = service_ref(r, m["service"], (*path, "service"), namespace)
    query = _text(r, m, path, "query")
    headers: tuple[str, ...] | None = None
    if m.get("errorRequestHeaders") is not None:
        headers = _strings(r, m, path, "errorRequestHeaders")
    if ref is None or query is None:
        return None
    return ErrorPage(tuple(status), ref, query, tuple(rewrites), headers)


_BUFFER_SIZES = (
    "maxRequestBodyBytes",
    "memRequestBodyBytes",
    "maxResponseBodyBytes",
    "memResponseBodyBytes",
)


def _buffering(r: Reader, value: Any, path: Path) -> Buffering | None:
    m = r.mapping(value, path, {*_BUFFER_SIZES, "retryExpression"})
    if m is None:
        return None
    sizes = []
    for key in _BUFFER_SIZES:
        size = r.integer(m, path, key)
        if size is not None and size < 0:  # oxy's buffer.New
            kind = "max" if key.startswith("max") else "mem"
            r.cannot_build((*path, key), f"{kind} bytes should be >= 0 got {size} (oxy)")
        sizes.append(max(size or 0, 0))
    text = _text(r, m, path, "retryExpression")
    expression = None
    if text:
        try:
            expression = parse_retry_expression(text)
        except RetryExpressionError as exc:
            r.cannot_build(
                (*path, "retryExpression"), f"invalid retry expression {show(text)}: {exc}"
            )
    max_request, mem_request, max_response, mem_response = sizes
    return Buffering(
        max_request_body_bytes=max_request,
        mem_request_body_bytes=mem_request,
        max_response_body_bytes=max_response,
        mem_response_body_bytes=mem_response,
        retry_expression=expression,
        retry_text=text or "",
    )


def _auth(
    r: Reader, value: Any, path: Path, kind: type[BasicAuth] | type[DigestAuth]
) -> BasicAuth | DigestAuth | None:
    """``basicAuth`` / ``digestAuth``: in the CRD the users come from a Secret only
    (read at resolution); Traefik's ``users`` and ``usersFile`` are not CRD fields."""
    m = r.mapping(value, path, {"secret", "realm", "removeHeader", "headerField"})
    if m is None:
        return None
    secret, realm = _text(r, m, path, "secret"), _text(r, m, path, "realm")
    header = _text(r, m, path, "headerField")
    remove = r.boolean(m, path, "removeHeader", False)
    if secret == "":
        # Traefik's createBasicAuthMiddleware: the Middleware is skipped (its routers 404).
        r.cannot_build((*path, "secret"), "auth secret must be set", skipped=True)
    if secret is None or realm is None or header is None:
        return None
    return kind(secret, realm=realm, header_field=header, remove_header=remove)


def _basic_auth(r: Reader, value: Any, path: Path) -> BasicAuth | DigestAuth | None:
    return _auth(r, value, path, BasicAuth)


def _digest_auth(r: Reader, value: Any, path: Path) -> BasicAuth | DigestAuth | None:
    return _auth(r, value, path, DigestAuth)


def _size(r: Reader, m: dict[str, Any], path: Path, key: str) -> int:
    """A body size limit: -1 (Traefik's default: none) when left out."""
    size = r.integer(m, path, key)
    return -1 if size is None else size


def _client_tls(
    r: Reader, value: Any, path: Path, known: set[str] | None = None
) -> ClientTLS | None:
    """``forwardAuth.tls`` (``caOptional`` too), or the ``known`` fields of another."""
    m = r.mapping(
        value, path, known or {"caSecret", "certSecret", "insecureSkipVerify", "caOptional"}
    )
    if m is None:
        return None
    if m.get("caOptional") is not None:
        r.warn(
            (*path, "caOptional"),
            "deprecated (Traefik: TLS client authentication is a server side option)",
        )
        r.boolean(m, path, "caOptional", False)
    ca, cert = _text(r, m, path, "caSecret"), _text(r, m, path, "certSecret")
    insecure = r.boolean(m, path, "insecureSkipVerify", False)
    if ca is None or cert is None:
        return None
    return ClientTLS(ca_secret=ca, cert_secret=cert, insecure_skip_verify=insecure)


def _forward_auth(r: Reader, value: Any, path: Path) -> ForwardAuth | None:
    known = {
        "address",
        "trustForwardHeader",
        "authResponseHeaders",
        "authResponseHeadersRegex",
        "authRequestHeaders",
        "addAuthCookiesToResponse",
        "headerField",
        "forwardBody",
        "maxBodySize",
        "maxResponseBodySize",
        "preserveLocationHeader",
        "preserveRequestMethod",
        "authSigninURL",
        "tls",
    }
    m = r.mapping(value, path, known)
    if m is None:
        return None
    address = _text(r, m, path, "address")
    if address == "":
        # Traefik's createForwardAuthMiddleware: the Middleware is skipped.
        r.cannot_build((*path, "address"), "forward authentication requires an address", True)
    elif address is not None and _url_scheme(address) not in ("http", "https"):
        # Traefik takes it, and answers every request 500 (Go's client refuses the URL).
        r.warn((*path, "address"), f"not an http:// or https:// URL: {show(address)}")
    trust = None
    if m.get("trustForwardHeader") is not None:
        trust = r.boolean(m, path, "trustForwardHeader", False)
    regex = _text(r, m, path, "authResponseHeadersRegex")
    if regex:
        _regex(r, (*path, "authResponseHeadersRegex"), regex)
    header_field, signin = _text(r, m, path, "headerField"), _text(r, m, path, "authSigninURL")
    tls = _client_tls(r, m["tls"], (*path, "tls")) if m.get("tls") is not None else None
    spec = ForwardAuth(
        address or "",
        trust_forward_header=trust,
        auth_response_headers=_strings(r, m, path, "authResponseHeaders"),
        auth_response_headers_regex=regex or "",
        auth_request_headers=_strings(r, m, path, "authRequestHeaders"),
        add_auth_cookies_to_response=_strings(r, m, path, "addAuthCookiesToResponse"),
        header_field=header_field or "",
        forward_body=r.boolean(m, path, "forwardBody", False),
        max_body_size=_size(r, m, path, "maxBodySize"),
        max_response_body_size=_size(r, m, path, "maxResponseBodySize"),
        preserve_location_header=r.boolean(m, path, "preserveLocationHeader", False),
        preserve_request_method=r.boolean(m, path, "preserveRequestMethod", False),
        auth_signin_url=signin or "",
        tls=tls,
    )
    refused = None in (regex, header_field, signin) or (m.get("tls") is not None and tls is None)
    return None if address is None or refused else spec


def _url_scheme(address: str) -> str:
    """The scheme of ``address`` as Go's ``url.Parse`` reads it (lowercased)."""
    scheme, colon, _ = address.partition(":")
    return scheme.lower() if colon else ""


def _source_range(r: Reader, m: dict[str, Any], path: Path, lister: str) -> tuple[str, ...] | None:
    """``sourceRange``: Traefik refuses an empty one and any entry ``ip.NewChecker`` does
    not parse (an IP, else a CIDR)."""
    given = m.get("sourceRange") or []
    ranges = _strings(r, m, path, "sourceRange")
    if not given:
        r.cannot_build((*path, "sourceRange"), f"sourceRange is empty, {lister} not created")
        return ()
    bad = [i for i, text in enumerate(ranges) if not ip_or_cidr(text)]
    for i in bad:
        r.cannot_build(
            (*path, "sourceRange", i),
            f"cannot parse CIDRs [{' '.join(ranges)}]: parsing CIDR trusted IPs <nil>: "
            f"invalid CIDR address: {ranges[i]}",
        )
    return None if len(ranges) != len(given) else ranges


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
        r.cannot_build((*path, "rejectStatusCode"), f"invalid HTTP status code {code}")
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
    except PredicateError as exc:  # oxy's cbreaker.New: its routers are not served
        r.cannot_build((*path, "expression"), f"invalid expression {show(expression)}: {exc}")
    return CircuitBreaker(
        expression,
        # Traefik passes only a positive duration to oxy, whose defaults are its own.
        check_period=check if check and check > 0 else DEFAULT_CHECK_PERIOD,
        fallback_duration=fallback if fallback and fallback > 0 else DEFAULT_FALLBACK_DURATION,
        recovery_duration=recovery if recovery and recovery > 0 else DEFAULT_RECOVERY_DURATION,
        response_code=code or 503,
    )


def _chain(r: Reader, value: Any, path: Path) -> ChainSpec | None:
    m = r.mapping(value, path, {"middlewares"})
    if m is None:
        return None
    return ChainSpec(middleware_refs(r, m, path, "middlewares"))


def _content_type(r: Reader, value: Any, path: Path) -> ContentType | None:
    m = r.mapping(value, path, {"autoDetect"})
    if m is None:
        return None
    if m.get("autoDetect") is not None:
        # Traefik logs the same deprecation; false turns the middleware into nothing.
        r.warn(
            (*path, "autoDetect"),
            "deprecated (Traefik: the contentType middleware only enables the "
            "content-type detection, remove this option)",
        )
    return ContentType(r.boolean(m, path, "autoDetect", True))


_ENCODED = {
    "allowEncodedSlash": "allow_encoded_slash",
    "allowEncodedBackSlash": "allow_encoded_back_slash",
    "allowEncodedNullCharacter": "allow_encoded_null_character",
    "allowEncodedSemicolon": "allow_encoded_semicolon",
    "allowEncodedPercent": "allow_encoded_percent",
    "allowEncodedQuestionMark": "allow_encoded_question_mark",
    "allowEncodedHash": "allow_encoded_hash",
}


def _encoded_characters(r: Reader, value: Any, path: Path) -> EncodedCharacters | None:
    m = r.mapping(value, path, _ENCODED)
    if m is None:
        return None
    return EncodedCharacters(
        **{name: r.boolean(m, path, key, False) for key, name in _ENCODED.items()}
    )


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
    "compress": _compress,
    "buffering": _buffering,
    "ipAllowList": _ip_allow_list,
    "ipWhiteList": _ip_white_list,
    "inFlightReq": _in_flight_req,
    "circuitBreaker": _circuit_breaker,
    "chain": _chain,
    "headers": headers,
    "contentType": _content_type,
    "encodedCharacters": _encoded_characters,
    "basicAuth": _basic_auth,
    "digestAuth": _digest_auth,
    "forwardAuth": _forward_auth,
    "plugin": plugin,
}
"""The spec key of each middleware kind read here -> its reader."""

NAMESPACED_READERS: dict[str, NamespacedReader] = {"errors": _errors}
"""The kinds whose reader also takes the Middleware's namespace (a Service reference)."""

_REFUSED_BECAUSE = {
    "grpcWeb": (
        "it turns gRPC-Web into gRPC, which needs HTTP/2 to the backend with trailers; "
        "the ASGI interface carries no HTTP/2 trailers to or from a backend"
    ),
    "passTLSClientCert": (
        "it passes the client's TLS certificate, and no entry point here terminates "
        "TLS with client certificates"
    ),
}

NOT_IMPLEMENTED: dict[str, str] = {
    key: f"the {key} middleware is not implemented: {_REFUSED_BECAUSE[key]}"
    for key in sorted(_REFUSED_BECAUSE)
    if key not in SPEC_READERS and key not in NAMESPACED_READERS
}
"""Traefik 3.7's middleware kinds (``MiddlewareSpec``) refused here, each by name with
the reason; every other kind has its reader."""


def middleware(r: Reader, spec: Any, namespace: str, name: str) -> MiddlewareResource | None:
    readable = {*SPEC_READERS, *NAMESPACED_READERS}
    m = r.mapping(spec, ("spec",), readable, NOT_IMPLEMENTED)
    if m is None:
        return None
    kinds = [key for key in m if key in readable or key in NOT_IMPLEMENTED]
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
    if kind in NAMESPACED_READERS:
        parsed = NAMESPACED_READERS[kind](r, m[kind], ("spec", kind), namespace)
    elif kind in SPEC_READERS:
        parsed = SPEC_READERS[kind](r, m[kind], ("spec", kind))
    else:
        return None  # reported by the mapping
    if parsed is None:
        return None
    return MiddlewareResource(namespace, name, parsed, r.origin(()), tuple(r.unbuildable))
