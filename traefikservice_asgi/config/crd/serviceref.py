"""A reference to a service, Traefik's ``LoadBalancerSpec`` (``pkg/provider/kubernetes/crd/
traefikio/v1alpha1/ingressroute.go``): the ``services`` of a route, the children of a
``weighted`` or ``highestRandomWeight`` TraefikService, the main service and mirrors of a
``mirroring`` one, the ``service`` and ``fallback`` of a ``failover`` one.

A Service reference carries the servers load balancer's options: ``sticky`` (Traefik's
``Sticky``/``Cookie``), ``healthCheck`` (``ServerHealthCheck``), ``strategy``,
``nativeLB``, ``serversTransport``, ``scheme``, ``passHostHeader``. Options Traefik ignores
on a TraefikService reference are refused there instead of dropped in silence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..models import (
    DEFAULT_COOKIE_PATH,
    DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_METHOD,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    DEFAULT_PASS_HOST_HEADER,
    DEFAULT_STRATEGY,
    STRATEGIES,
    CookieOptions,
    HealthCheck,
    Kind,
    ServiceRef,
    Strategy,
)
from .middlewareref import middleware_refs

__all__ = [
    "LB_FIELDS",
    "NOT_SUPPORTED_LB",
    "sanitize_cookie_name",
    "service_ref",
    "sticky_cookie",
]

NOT_SUPPORTED_LB = {
    "passiveHealthCheck": "passive health checks are not implemented yet",
}
LB_FIELDS = {
    "name",
    "kind",
    "namespace",
    "port",
    "weight",
    "scheme",
    "passHostHeader",
    "sticky",
    "strategy",
    "responseForwarding",
    "serversTransport",
    "healthCheck",
    "nativeLB",
    "nodePortLB",
    "middlewares",
} | set(NOT_SUPPORTED_LB)

_HEALTH_CHECK_FIELDS = {
    "path",
    "interval",
    "unhealthyInterval",
    "timeout",
    "scheme",
    "hostname",
    "port",
    "headers",
    "status",
    "followRedirects",
    "method",
    "mode",
}
# HTTP methods and header names are tokens (RFC 9110), as Go checks them.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def sanitize_cookie_name(name: str) -> str:
    """Traefik's ``sanitizeName`` (``pkg/server/cookie``): every character outside
    ``A-Za-z0-9`` and ``!#$%&'*+-.^_`|~`` becomes ``_``, so a configured name is always a
    valid cookie token."""
    return "".join(c if c.isascii() and _TOKEN.fullmatch(c) else "_" for c in name)


def _or_default(value: str | None, default: str) -> str:
    return default if value is None else value


def sticky_cookie(r: Reader, value: Any, path: Path) -> CookieOptions | None:
    m = r.mapping(value, path, {"cookie"})
    if m is None or m.get("cookie") is None:
        if m is not None and "cookie" in m:
            return CookieOptions(name="")  # `cookie:` with no value: defaults
        if m is not None:
            r.error((*path, "cookie"), "required field is missing (only cookie stickiness exists)")
        return None
    cpath = (*path, "cookie")
    c = r.mapping(
        m["cookie"], cpath, {"name", "secure", "httpOnly", "sameSite", "maxAge", "path", "domain"}
    )
    if c is None:
        return None
    name = c.get("name")
    if name is not None and not isinstance(name, str):
        r.error((*cpath, "name"), f"must be a string, got {show(name)}")
        name = None
    same_site = r.string(c, cpath, "sameSite")
    if same_site and same_site.lower() not in ("none", "lax", "strict"):
        r.error((*cpath, "sameSite"), f"must be one of none, lax, strict, got {show(same_site)}")
    return CookieOptions(
        name=sanitize_cookie_name(name) if name else "",
        secure=r.boolean(c, cpath, "secure", False),
        http_only=r.boolean(c, cpath, "httpOnly", False),
        same_site=same_site,
        max_age=r.integer(c, cpath, "maxAge") or 0,
        # An empty path is kept: Go then writes no Path attribute.
        path=_or_default(r.string(c, cpath, "path"), DEFAULT_COOKIE_PATH),
        domain=r.string(c, cpath, "domain"),
    )


def service_ref(
    r: Reader, value: Any, path: Path, namespace: str, extra: Iterable[str] = ()
) -> ServiceRef | None:
    m = r.mapping(value, path, LB_FIELDS | set(extra), NOT_SUPPORTED_LB)
    if m is None:
        return None
    name = r.string(m, path, "name", required=True)
    kind: Kind = r.string(m, path, "kind", choices=("Service", "TraefikService")) or "Service"  # type: ignore[assignment]
    ns = r.string(m, path, "namespace") or namespace
    port = m.get("port")
    if kind == "Service":
        if port is None:
            r.error((*path, "port"), "required field is missing for a Service reference")
        elif isinstance(port, bool) or not isinstance(port, (int, str)) or port == "":
            r.error((*path, "port"), f"must be a port number or name, got {show(port)}")
            port = None
        elif isinstance(port, int) and not 1 <= port <= 65535:
            r.error((*path, "port"), f"must be a port number from 1 to 65535, got {show(port)}")
            port = None
    weight = r.integer(m, path, "weight", minimum=0)
    scheme = r.string(m, path, "scheme")
    if scheme is not None and scheme not in ("http", "https", "h2c"):
        r.error((*path, "scheme"), f"must be http, https or h2c, got {show(scheme)}")
    strategy = _strategy(r, m, path, kind)
    native_lb = r.boolean(m, path, "nativeLB", False)
    if native_lb and kind == "TraefikService":
        r.error((*path, "nativeLB"), _SERVICE_REF_ONLY)
        native_lb = False
    node_port_lb = r.boolean(m, path, "nodePortLB", False)
    if node_port_lb and kind == "TraefikService":
        r.error((*path, "nodePortLB"), _SERVICE_REF_ONLY)
        node_port_lb = False
    if name is not None and "@" in name:
        provider = name.rsplit("@", 1)[1]
        if provider != "kubernetescrd":
            r.error(
                (*path, "name"),
                f"cross-provider reference {show(name)}: there is no {provider!r} provider "
                "here, only Kubernetes CRD resources (kubernetescrd)",
            )
            name = None
        elif kind == "Service":
            # Traefik looks the Kubernetes Service up by the whole name, and none has
            # an "@" in it.
            r.error(
                (*path, "name"),
                f"a Service name cannot name a provider, got {show(name)} "
                "(only a TraefikService reference may end in @kubernetescrd)",
            )
            name = None
    if "responseForwarding" in m:
        rf = r.mapping(m["responseForwarding"], (*path, "responseForwarding"), {"flushInterval"})
        if (
            rf is not None
            and rf.get("flushInterval") is not None
            and not isinstance(rf["flushInterval"], (str, int))
        ):
            r.error(
                (*path, "responseForwarding", "flushInterval"),
                f"must be a duration, got {show(rf['flushInterval'])}",
            )
    health_check = None
    if m.get("healthCheck") is not None:
        health_check = _health_check(r, m["healthCheck"], (*path, "healthCheck"))
        if health_check is not None and kind == "TraefikService":
            # Traefik drops it without a word (nameAndService): refused here instead.
            r.error(
                (*path, "healthCheck"),
                "applies to a Service reference only (Traefik ignores it on a "
                "TraefikService reference)",
            )
            health_check = None
    middlewares = middleware_refs(r, m, path, "middlewares")
    if middlewares and kind == "TraefikService":
        # Traefik's nameAndService drops them without a word: refused here instead.
        r.error((*path, "middlewares"), _SERVICE_REF_ONLY)
        middlewares = ()
    sticky = (
        sticky_cookie(r, m["sticky"], (*path, "sticky")) if m.get("sticky") is not None else None
    )
    if sticky is not None and kind == "TraefikService":
        r.error(
            (*path, "sticky"),
            "applies to a Service reference only; set sticky on the "
            "TraefikService's weighted spec instead",
        )
        sticky = None
    if sticky is not None and strategy == "hrw":
        r.warn(
            (*path, "sticky"),
            "ignored: the hrw strategy keeps a client on its server by IP, without a cookie "
            "(Traefik ignores sticky with hrw too)",
        )
    if name is None:
        return None
    return ServiceRef(
        name=name,
        kind=kind,
        namespace=ns,
        origin=r.origin(path),
        port=port,
        weight=weight,
        scheme=scheme,
        pass_host_header=r.boolean(m, path, "passHostHeader", DEFAULT_PASS_HOST_HEADER),
        sticky=sticky,
        servers_transport=r.string(m, path, "serversTransport"),
        health_check=health_check,
        strategy=strategy,
        native_lb=native_lb,
        node_port_lb=node_port_lb,
        middlewares=middlewares,
    )


_SERVICE_REF_ONLY = (
    "applies to a Service reference only (Traefik ignores it on a TraefikService reference)"
)


def _strategy(r: Reader, m: dict[str, Any], path: Path, kind: Kind) -> Strategy:
    """``strategy``, as Traefik's CRD provider reads it: empty means ``wrr``,
    ``RoundRobin`` is the deprecated spelling of ``wrr`` (a warning), any other value
    outside wrr/p2c/hrw/leasttime is an error. Traefik ignores it on a TraefikService
    reference; a value that would change the balancing there is refused instead."""
    value = m.get("strategy")
    if value is None or value == "":
        return DEFAULT_STRATEGY
    spath = (*path, "strategy")
    if not isinstance(value, str):
        r.error(spath, f"must be a string, got {show(value)}")
        return DEFAULT_STRATEGY
    if value == "RoundRobin":
        if kind == "Service":
            r.warn(spath, "RoundRobin strategy value is deprecated, please use wrr value instead")
        return "wrr"
    strategy = next((s for s in STRATEGIES if s == value), None)
    if strategy is None:
        r.error(
            spath,
            f"unsupported load-balancer strategy {show(value)} (one of {', '.join(STRATEGIES)})",
        )
        return DEFAULT_STRATEGY
    if kind == "TraefikService" and strategy != DEFAULT_STRATEGY:
        r.error(spath, _SERVICE_REF_ONLY)
        return DEFAULT_STRATEGY
    return strategy


def _health_check(r: Reader, value: Any, path: Path) -> HealthCheck | None:
    """``healthCheck`` (Traefik's ``ServerHealthCheck``), defaults as in
    ``buildServersLB``: interval 30s, unhealthyInterval = interval, timeout 5s,
    followRedirects true, method GET. Where Traefik logs an error and falls back to
    the default (a zero interval or timeout), the value is refused instead."""
    m = r.mapping(value, path, _HEALTH_CHECK_FIELDS)
    if m is None:
        return None
    failed = r.failed
    r.failed = False
    mode = r.string(m, path, "mode")
    if mode == "grpc":
        r.error(
            (*path, "mode"),
            "not supported by traefikservice-asgi: gRPC health checks are not implemented",
        )
    elif mode is not None and mode != "http":
        r.error((*path, "mode"), f"must be http or grpc, got {show(mode)}")
    durations: dict[str, float] = {}
    for key in ("interval", "unhealthyInterval", "timeout"):
        seconds = r.duration(m, path, key)
        if seconds is not None and seconds <= 0:
            r.error((*path, key), f"must be more than 0, got {show(m[key])}")
        elif seconds is not None:
            durations[key] = seconds
    scheme = r.string(m, path, "scheme")
    if scheme is not None and scheme not in ("http", "https", "h2c"):
        r.error((*path, "scheme"), f"must be http, https or h2c, got {show(scheme)}")
    method = r.string(m, path, "method")
    if method is not None and not _TOKEN.fullmatch(method):
        r.error(
            (*path, "method"), f"must be an HTTP method such as GET or HEAD, got {show(method)}"
        )
    status = r.integer(m, path, "status", minimum=0, maximum=599)
    if status is not None and 0 < status < 100:
        r.error((*path, "status"), f"must be an HTTP status from 100 to 599, got {status}")
    port = r.integer(m, path, "port", minimum=0, maximum=65535)
    headers: list[tuple[str, str]] = []
    if m.get("headers") is not None:
        hpath = (*path, "headers")
        h = m["headers"]
        if not isinstance(h, dict):
            r.error(hpath, f"must be a mapping of header names to values, got {show(h)}")
        else:
            for key, text in h.items():
                if not isinstance(key, str) or not _TOKEN.fullmatch(key):
                    r.error((*hpath, str(key)), f"must be a header name, got {show(key)}")
                elif not isinstance(text, str) or any(c in text for c in "\r\n\0"):
                    r.error((*hpath, key), f"must be a one-line string, got {show(text)}")
                else:
                    headers.append((key, text))
    path_value = r.string(m, path, "path")
    hostname = r.string(m, path, "hostname")
    follow = r.boolean(m, path, "followRedirects", DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS)
    bad, r.failed = r.failed, r.failed or failed
    if bad:
        return None
    interval = durations.get("interval", DEFAULT_HEALTH_CHECK_INTERVAL)
    return HealthCheck(
        origin=r.origin(path),
        path=path_value or "",
        interval=interval,
        unhealthy_interval=durations.get("unhealthyInterval", interval),
        timeout=durations.get("timeout", DEFAULT_HEALTH_CHECK_TIMEOUT),
        scheme=scheme,
        hostname=hostname or None,
        port=port or 0,
        headers=tuple(headers),
        status=status or 0,
        follow_redirects=follow,
        method=method or DEFAULT_HEALTH_CHECK_METHOD,
    )
