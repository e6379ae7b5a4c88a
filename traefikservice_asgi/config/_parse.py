"""From YAML documents to checked resources, collecting every problem on the way.

Traefik's own CRDs (``traefik.io/v1alpha1`` and the older ``traefik.containo.us``) are
read strictly: an unknown field is an error (a typo such as ``wieght`` would otherwise
silently mean weight 1), and a field Traefik knows but this package does not implement
is an error naming it, so no behaviour is dropped in silence. Core Kubernetes resources
are read leniently (only the fields we use are checked), since real manifests carry many
fields that do not concern routing.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigIssue, RuleError
from ..loadbalancer.sticky import CookieOptions, sanitize_cookie_name
from ..rules import compile_rule
from ._duration import parse_duration
from ._models import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    DEFAULT_IDLE_CONN_TIMEOUT,
    DEFAULT_MAX_IDLE_CONNS_PER_HOST,
    STRATEGIES,
    EndpointSet,
    FailoverSpec,
    HealthCheck,
    HRWSpec,
    IngressRoute,
    Kind,
    KubeService,
    MirroringSpec,
    MirrorRef,
    Origin,
    RouteSpec,
    ServersTransport,
    ServicePort,
    ServiceRef,
    Strategy,
    TraefikService,
    WeightedSpec,
)
from ._yaml import Document, Path

__all__ = ["Resources", "parse_document"]

logger = logging.getLogger("traefikservice_asgi.config")

TRAEFIK_GROUPS = ("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")

# Traefik kinds that configure things this package does not serve. They are skipped
# with a warning: they add listeners or objects, they do not change an HTTP route here.
# (A route *using* one, e.g. `middlewares`, is an error instead.)
_OTHER_TRAEFIK_KINDS = {
    "Middleware": "Traefik middlewares are not implemented",
    "MiddlewareTCP": "TCP is not served",
    "IngressRouteTCP": "TCP routes are not served",
    "IngressRouteUDP": "UDP routes are not served",
    "TLSOption": "TLS is terminated by the ASGI server, not by this package",
    "TLSStore": "TLS is terminated by the ASGI server, not by this package",
    "ServersTransportTCP": "TCP is not served",
}

_NOT_SUPPORTED_LB = {
    "passiveHealthCheck": "passive health checks are not implemented yet",
    "nodePortLB": "nodePortLB is not implemented",
    "middlewares": "Traefik middlewares are not implemented",
}
_LB_FIELDS = {
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
} | set(_NOT_SUPPORTED_LB)

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


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def show(value: Any) -> str:
    """A value as the user wrote it, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


@dataclass
class Resources:
    """Everything parsed from every file of one load, plus the problems found."""

    ingress_routes: list[IngressRoute] = field(default_factory=list)
    traefik_services: dict[tuple[str, str], TraefikService] = field(default_factory=dict)
    services: dict[tuple[str, str], KubeService] = field(default_factory=dict)
    endpoints: list[EndpointSet] = field(default_factory=list)
    transports: dict[tuple[str, str], ServersTransport] = field(default_factory=dict)
    # Secret and ConfigMap contents, (namespace, name) -> key -> text (Secrets decoded)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # (kind, namespace, name) -> (API group, origin) of the Traefik resource kept
    groups: dict[tuple[str, str, str], tuple[str, Origin]] = field(default_factory=dict)


class _Reader:
    """Reads fields of one resource, reporting problems with file, line and path."""

    def __init__(self, doc: Document, file: str | None, resource: str, out: Resources) -> None:
        self.doc = doc
        self.file = file
        self.resource = resource
        self.out = out
        self.failed = False

    def origin(self, path: Path) -> Origin:
        return Origin(self.file, self.doc.line_of(path), self.resource, format_path(path))

    def error(self, path: Path, message: str) -> None:
        self.failed = True
        self.out.issues.append(
            ConfigIssue(
                message, self.file, self.doc.line_of(path), self.resource, format_path(path) or None
            )
        )

    def mapping(
        self,
        value: Any,
        path: Path,
        known: Iterable[str],
        unsupported: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {show(value)}")
            return None
        known = set(known)
        for key in value:
            if unsupported and key in unsupported:
                self.error(
                    (*path, key), f"not supported by traefikservice-asgi: {unsupported[key]}"
                )
            elif key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.error((*path, key), f"unknown field {show(str(key))}{hint}")
        return value

    def string(
        self,
        m: dict[str, Any],
        path: Path,
        key: str,
        *,
        required: bool = False,
        choices: Iterable[str] | None = None,
    ) -> str | None:
        if key not in m or m[key] is None:
            if required:
                self.error((*path, key), "required field is missing")
            return None
        value = m[key]
        if not isinstance(value, str) or (required and not value):
            self.error((*path, key), f"must be a non-empty string, got {show(value)}")
            return None
        if choices is not None and value not in choices:
            options = ", ".join(choices)
            self.error((*path, key), f"must be one of {options}, got {show(value)}")
            return None
        return value

    def integer(
        self,
        m: dict[str, Any],
        path: Path,
        key: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if key not in m or m[key] is None:
            return None
        value = m[key]
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
        if not ok:
            bound = "an integer"
            if minimum is not None and maximum is not None:
                bound = f"an integer from {minimum} to {maximum}"
            elif minimum is not None:
                bound = f"an integer >= {minimum}"
            self.error((*path, key), f"must be {bound}, got {show(value)}")
            return None
        return int(value)

    def boolean(self, m: dict[str, Any], path: Path, key: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.error((*path, key), f"must be true or false, got {show(value)}")
            return default
        return value

    def items(
        self, m: dict[str, Any], path: Path, key: str, *, required: bool = False
    ) -> list[Any]:
        value = m.get(key)
        if value is None:
            if required:
                self.error((*path, key), "required field is missing")
            return []
        if not isinstance(value, list):
            self.error((*path, key), f"must be a list, got {show(value)}")
            return []
        return value


# ------------------------------------------------------------------------ Traefik CRDs


def _cookie(r: _Reader, value: Any, path: Path) -> CookieOptions | None:
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
        path=r.string(c, cpath, "path") or "/",
        domain=r.string(c, cpath, "domain"),
    )


def _service_ref(
    r: _Reader, value: Any, path: Path, namespace: str, extra: Iterable[str] = ()
) -> ServiceRef | None:
    m = r.mapping(value, path, _LB_FIELDS | set(extra), _NOT_SUPPORTED_LB)
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
    sticky = _cookie(r, m["sticky"], (*path, "sticky")) if m.get("sticky") is not None else None
    if sticky is not None and kind == "TraefikService":
        r.error(
            (*path, "sticky"),
            "applies to a Service reference only; set sticky on the "
            "TraefikService's weighted spec instead",
        )
        sticky = None
    if sticky is not None and strategy == "hrw":
        spath = (*path, "sticky")
        r.out.warnings.append(
            f"{r.file}:{r.doc.line_of(spath)}: {r.resource}: {format_path(spath)}: ignored: "
            "the hrw strategy keeps a client on its server by IP, without a cookie "
            "(Traefik ignores sticky with hrw too)"
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
        pass_host_header=r.boolean(m, path, "passHostHeader", True),
        sticky=sticky,
        servers_transport=r.string(m, path, "serversTransport"),
        health_check=health_check,
        strategy=strategy,
        native_lb=native_lb,
    )


_SERVICE_REF_ONLY = (
    "applies to a Service reference only (Traefik ignores it on a TraefikService reference)"
)


def _strategy(r: _Reader, m: dict[str, Any], path: Path, kind: Kind) -> Strategy:
    """``strategy``, as Traefik's CRD provider reads it: empty means ``wrr``,
    ``RoundRobin`` is the deprecated spelling of ``wrr`` (a warning), any other value
    outside wrr/p2c/hrw/leasttime is an error. Traefik ignores it on a TraefikService
    reference; a value that would change the balancing there is refused instead."""
    value = m.get("strategy")
    if value is None or value == "":
        return "wrr"
    spath = (*path, "strategy")
    if not isinstance(value, str):
        r.error(spath, f"must be a string, got {show(value)}")
        return "wrr"
    if value == "RoundRobin":
        if kind == "Service":
            r.out.warnings.append(
                f"{r.file}:{r.doc.line_of(spath)}: {r.resource}: {format_path(spath)}: "
                "RoundRobin strategy value is deprecated, please use wrr value instead"
            )
        return "wrr"
    strategy = next((s for s in STRATEGIES if s == value), None)
    if strategy is None:
        r.error(
            spath,
            f"unsupported load-balancer strategy {show(value)} (one of {', '.join(STRATEGIES)})",
        )
        return "wrr"
    if kind == "TraefikService" and strategy != "wrr":
        r.error(spath, _SERVICE_REF_ONLY)
        return "wrr"
    return strategy


def _health_check(r: _Reader, value: Any, path: Path) -> HealthCheck | None:
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
        seconds = _duration(r, m, path, key)
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
    follow = r.boolean(m, path, "followRedirects", True)
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
        method=method or "GET",
    )


_STATUS_RANGE = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")


def _status_ranges(r: _Reader, e: dict[str, Any], path: Path) -> tuple[tuple[int, int], ...]:
    """``errors.status``: Traefik's ``types.NewHTTPCodeRanges`` ("502", "500-599")."""
    ranges: list[tuple[int, int]] = []
    items = r.items(e, path, "status")
    for i, item in enumerate(items):
        ipath = (*path, "status", i)
        found = _STATUS_RANGE.fullmatch(item) if isinstance(item, str) else None
        if found is None:
            r.error(ipath, f'must be a status or a range like "500-599", got {show(item)}')
            continue
        low = int(found.group(1))
        high = int(found.group(2) or low)
        if low > high:
            r.error(ipath, f"range {show(item)} is empty: write the lower status first")
            continue
        ranges.append((low, high))
    if not items and "status" in e and isinstance(e["status"], list):
        r.error((*path, "status"), "must list at least one status or range")
    return tuple(ranges)


def _failover(r: _Reader, value: Any, namespace: str) -> FailoverSpec | None:
    path: Path = ("spec", "failover")
    f = r.mapping(value, path, {"service", "fallback", "errors"})
    if f is None:
        return None
    refs: list[ServiceRef | None] = []
    for key in ("service", "fallback"):
        if f.get(key) is None:
            r.error((*path, key), "required field is missing")
            refs.append(None)
        else:
            refs.append(_service_ref(r, f[key], (*path, key), namespace))
    status: tuple[tuple[int, int], ...] = ()
    max_body: int | None = None
    epath: Path = (*path, "errors")
    e = r.mapping(f["errors"], epath, {"status", "maxRequestBodyBytes"}) if "errors" in f else None
    if e is not None:
        status = _status_ranges(r, e, epath)
        max_body = r.integer(e, epath, "maxRequestBodyBytes", minimum=-1)
    main, fallback = refs
    checked = main is not None and main.health_check is not None
    if not checked and (e is None or ("status" not in e or e["status"] is None)):
        # Traefik 3.7 builds a failover without status ranges only around a main service
        # that reports its health ("cannot register ... as updater" otherwise): in the
        # CRD, a Service reference with a healthCheck.
        r.error(
            (*path, "errors", "status") if e is not None else (*path, "errors"),
            'required field is missing: set the statuses to fail over on, e.g. ["500-599"] '
            "(without them Traefik fails over only when the main service is a Service "
            "reference with a healthCheck)",
        )
    if main is None or fallback is None:
        return None
    # Without ranges an error was reported (the load fails); the spec is still kept so
    # that references to this TraefikService do not add "not found" errors.
    return FailoverSpec(main, fallback, status, -1 if max_body is None else max_body)


def _traefik_service(r: _Reader, spec: Any, namespace: str, name: str) -> TraefikService | None:
    kinds_known = ("weighted", "mirroring", "failover", "highestRandomWeight")
    m = r.mapping(spec, ("spec",), kinds_known)
    if m is None:
        return None
    kinds = [k for k in kinds_known if k in m]
    if not kinds:
        r.error(("spec",), f"unspecified service type: set one of {', '.join(kinds_known)}")
        return None
    if len(kinds) > 1:
        r.error(("spec",), f"only one service type may be set, got {', '.join(kinds)}")
        return None
    parsed: WeightedSpec | MirroringSpec | FailoverSpec | HRWSpec | None = None
    if kinds[0] == "failover":
        parsed = _failover(r, m["failover"], namespace)
    elif kinds[0] == "highestRandomWeight":
        path: Path = ("spec", "highestRandomWeight")
        h = r.mapping(m["highestRandomWeight"], path, {"services"})
        if h is None:
            return None
        hrw_refs = [
            _service_ref(r, s, (*path, "services", i), namespace)
            for i, s in enumerate(r.items(h, path, "services", required=True))
        ]
        parsed = HRWSpec(tuple(x for x in hrw_refs if x is not None))
    elif kinds[0] == "weighted":
        path = ("spec", "weighted")
        w = r.mapping(m["weighted"], path, {"services", "sticky"})
        if w is None:
            return None
        refs = [
            _service_ref(r, s, (*path, "services", i), namespace)
            for i, s in enumerate(r.items(w, path, "services", required=True))
        ]
        sticky = _cookie(r, w["sticky"], (*path, "sticky")) if w.get("sticky") is not None else None
        parsed = WeightedSpec(tuple(x for x in refs if x is not None), sticky)
    elif kinds[0] == "mirroring":
        path = ("spec", "mirroring")
        mm = r.mapping(
            m["mirroring"],
            path,
            _LB_FIELDS | {"mirrors", "mirrorBody", "maxBodySize"},
            _NOT_SUPPORTED_LB,
        )
        if mm is None:
            return None
        main_fields = {
            k: v for k, v in mm.items() if k not in ("mirrors", "mirrorBody", "maxBodySize")
        }
        main = _service_ref(r, main_fields, path, namespace)
        mirrors: list[MirrorRef] = []
        for i, item in enumerate(r.items(mm, path, "mirrors")):
            mpath = (*path, "mirrors", i)
            ref = _service_ref(r, item, mpath, namespace, extra={"percent"})
            percent = (
                r.integer(item, mpath, "percent", minimum=0, maximum=100)
                if isinstance(item, dict)
                else None
            )
            if ref is not None:
                mirrors.append(MirrorRef(ref, percent or 0))
        max_body = r.integer(mm, path, "maxBodySize", minimum=-1)
        if main is None:
            return None
        parsed = MirroringSpec(
            main=main,
            mirrors=tuple(mirrors),
            mirror_body=r.boolean(mm, path, "mirrorBody", True),
            max_body_size=-1 if max_body is None else max_body,
        )
    if parsed is None:
        return None
    return TraefikService(namespace, name, r.origin(()), parsed)


def _ingress_route(
    r: _Reader, spec: Any, namespace: str, name: str, group: str
) -> IngressRoute | None:
    m = r.mapping(spec, ("spec",), {"entryPoints", "routes", "tls", "parentRefs"})
    if m is None:
        return None
    if m.get("tls") is not None:
        r.out.warnings.append(
            f"{r.file}:{r.doc.line_of(('spec', 'tls'))}: {r.resource}: spec.tls: ignored: "
            "TLS is terminated by the ASGI server (uvicorn --ssl-certfile), not by this package"
        )
    if m.get("parentRefs") is not None:
        r.error(
            ("spec", "parentRefs"),
            "not supported by traefikservice-asgi: parentRefs are not implemented",
        )
    entry_points = m.get("entryPoints")
    if entry_points is not None and not (
        isinstance(entry_points, list) and all(isinstance(e, str) for e in entry_points)
    ):
        r.error(("spec", "entryPoints"), f"must be a list of strings, got {show(entry_points)}")
    routes: list[RouteSpec] = []
    for i, item in enumerate(r.items(m, ("spec",), "routes", required=True)):
        path: Path = ("spec", "routes", i)
        rm = r.mapping(
            item,
            path,
            {"match", "kind", "priority", "services", "syntax"},
            {
                "middlewares": "Traefik middlewares are not implemented",
                "observability": "observability options are not implemented",
            },
        )
        if rm is None:
            continue
        match = r.string(rm, path, "match", required=True)
        r.string(rm, path, "kind", choices=("Rule",))
        default_syntax = "v2" if group.startswith("traefik.containo.us") else "v3"
        syntax = r.string(rm, path, "syntax", choices=("v3", "v2")) or default_syntax
        priority = r.integer(rm, path, "priority", minimum=0)
        refs = [
            _service_ref(r, s, (*path, "services", j), namespace)
            for j, s in enumerate(r.items(rm, path, "services", required=True))
        ]
        if "services" in rm and isinstance(rm["services"], list) and not rm["services"]:
            r.error((*path, "services"), "must list at least one service")
        if match is None:
            continue
        try:
            rule = compile_rule(match, syntax=syntax)  # type: ignore[arg-type]
        except RuleError as exc:
            r.error((*path, "match"), f"invalid rule: {exc}")
            continue
        routes.append(
            RouteSpec(
                rule=rule,
                priority=priority or rule.priority,
                services=tuple(x for x in refs if x is not None),
                origin=r.origin(path),
            )
        )
    return IngressRoute(namespace, name, r.origin(()), tuple(routes))


def _duration(r: _Reader, m: dict[str, Any], path: Path, key: str) -> float | None:
    if m.get(key) is None:
        return None
    try:
        return parse_duration(m[key])
    except ValueError as exc:
        r.error((*path, key), f"{exc}, got {show(m[key])}")
        return None


def _servers_transport(r: _Reader, spec: Any, namespace: str, name: str) -> ServersTransport | None:
    path: Path = ("spec",)
    m = r.mapping(
        spec,
        path,
        {
            "serverName",
            "insecureSkipVerify",
            "rootCAs",
            "rootCAsSecrets",
            "certificatesSecrets",
            "maxIdleConnsPerHost",
            "forwardingTimeouts",
            "disableHTTP2",
        },
        {"peerCertURI": "peerCertURI is not implemented", "spiffe": "SPIFFE is not implemented"},
    )
    if m is None:
        return None
    root_cas: list[str] = []
    for i, item in enumerate(r.items(m, path, "rootCAs")):
        ipath = (*path, "rootCAs", i)
        ca = r.mapping(item, ipath, {"secret", "configMap"})
        if ca is None:
            continue
        secret, config_map = r.string(ca, ipath, "secret"), r.string(ca, ipath, "configMap")
        if (secret is None) == (config_map is None):
            r.error(ipath, "needs exactly one of secret, configMap")
        else:
            root_cas.append(f"secret:{secret}" if secret else f"configMap:{config_map}")
    for i, item in enumerate(r.items(m, path, "rootCAsSecrets")):
        if isinstance(item, str) and item:
            root_cas.append(f"secret:{item}")
        else:
            r.error((*path, "rootCAsSecrets", i), f"must be a Secret name, got {show(item)}")
    certificates: list[str] = []
    for i, item in enumerate(r.items(m, path, "certificatesSecrets")):
        if isinstance(item, str) and item:
            certificates.append(item)
        else:
            r.error((*path, "certificatesSecrets", i), f"must be a Secret name, got {show(item)}")
    timeouts: dict[str, float | None] = {}
    if m.get("forwardingTimeouts") is not None:
        tpath = (*path, "forwardingTimeouts")
        t = r.mapping(
            m["forwardingTimeouts"],
            tpath,
            {
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            },
        )
        if t is not None:
            for key in (
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            ):
                timeouts[key] = _duration(r, t, tpath, key)
    disable_http2 = r.boolean(m, path, "disableHTTP2", False)
    max_idle = r.integer(m, path, "maxIdleConnsPerHost", minimum=0)
    dial = timeouts.get("dialTimeout")
    idle = timeouts.get("idleConnTimeout")
    header = timeouts.get("responseHeaderTimeout")
    return ServersTransport(
        namespace=namespace,
        name=name,
        origin=r.origin(()),
        server_name=r.string(m, path, "serverName"),
        insecure_skip_verify=r.boolean(m, path, "insecureSkipVerify", False),
        root_cas=tuple(root_cas),
        client_certificates=tuple(certificates),
        # Traefik: 0 means the default.
        max_idle_conns_per_host=max_idle or DEFAULT_MAX_IDLE_CONNS_PER_HOST,
        dial_timeout=dial or DEFAULT_DIAL_TIMEOUT,
        response_header_timeout=header or None,
        idle_conn_timeout=idle or DEFAULT_IDLE_CONN_TIMEOUT,
        disable_http2=disable_http2,
    )


def _key_values(r: _Reader, doc: dict[str, Any], *, secret: bool) -> dict[str, str]:
    import base64
    import binascii

    out: dict[str, str] = {}
    data = doc.get("data") or {}
    if not isinstance(data, dict):
        r.error(("data",), f"must be a mapping, got {show(data)}")
        return out
    for key, value in data.items():
        if not isinstance(value, str):
            r.error(("data", str(key)), f"must be a string, got {show(value)}")
        elif secret:
            try:
                out[str(key)] = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                r.error(("data", str(key)), "must be base64 of UTF-8 text")
        else:
            out[str(key)] = value
    if secret and isinstance(doc.get("stringData"), dict):
        out.update({str(k): str(v) for k, v in doc["stringData"].items()})
    return out


# ---------------------------------------------------------------- core Kubernetes kinds


def _kube_service(r: _Reader, spec: Any, namespace: str, name: str) -> KubeService | None:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        r.error(("spec",), f"must be a mapping, got {show(spec)}")
        return None
    stype = spec.get("type") or "ClusterIP"
    ports: list[ServicePort] = []
    for i, p in enumerate(r.items(spec, ("spec",), "ports")):
        path: Path = ("spec", "ports", i)
        if not isinstance(p, dict):
            r.error(path, f"must be a mapping, got {show(p)}")
            continue
        number = r.integer(p, path, "port", minimum=1, maximum=65535)
        if number is None:
            if "port" not in p:
                r.error((*path, "port"), "required field is missing")
            continue
        pname = p.get("name") or ""
        ports.append(ServicePort(number, str(pname), p.get("targetPort")))
    external = spec.get("externalName")
    if stype == "ExternalName" and not isinstance(external, str):
        r.error(("spec", "externalName"), "required for a Service of type ExternalName")
        external = None
    cluster_ip = spec.get("clusterIP")
    if cluster_ip is not None and not isinstance(cluster_ip, str):
        r.error(("spec", "clusterIP"), f"must be an IP address or None, got {show(cluster_ip)}")
        cluster_ip = None
    return KubeService(
        namespace,
        name,
        r.origin(()),
        str(stype),
        tuple(ports),
        external if isinstance(external, str) else None,
        cluster_ip or None,
    )


def _endpoints(r: _Reader, doc: dict[str, Any], namespace: str, name: str) -> list[EndpointSet]:
    out: list[EndpointSet] = []
    for i, subset in enumerate(r.items(doc, (), "subsets")):
        path: Path = ("subsets", i)
        if not isinstance(subset, dict):
            r.error(path, f"must be a mapping, got {show(subset)}")
            continue
        addresses = []
        for j, a in enumerate(r.items(subset, path, "addresses")):
            ip = a.get("ip") if isinstance(a, dict) else None
            if not isinstance(ip, str):
                r.error((*path, "addresses", j, "ip"), f"must be an IP address, got {show(ip)}")
                continue
            addresses.append(ip)
        for j, p in enumerate(r.items(subset, path, "ports")):
            ppath = (*path, "ports", j)
            if not isinstance(p, dict):
                r.error(ppath, f"must be a mapping, got {show(p)}")
                continue
            number = r.integer(p, ppath, "port", minimum=1, maximum=65535)
            if number is not None:
                out.append(
                    EndpointSet(
                        namespace,
                        name,
                        str(p.get("name") or ""),
                        number,
                        tuple(addresses),
                        r.origin(ppath),
                    )
                )
    return out


def _endpoint_slice(r: _Reader, doc: dict[str, Any], namespace: str) -> list[EndpointSet]:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    service = labels.get("kubernetes.io/service-name") if isinstance(labels, dict) else None
    if not isinstance(service, str):
        r.error(
            ("metadata", "labels"),
            'needs the label "kubernetes.io/service-name" naming its Service',
        )
        return []
    addresses: list[str] = []
    for i, e in enumerate(r.items(doc, (), "endpoints")):
        if not isinstance(e, dict):
            r.error(("endpoints", i), f"must be a mapping, got {show(e)}")
            continue
        conditions = e.get("conditions") or {}
        # Traefik v3 keeps endpoints whose `serving` is not false, whatever `ready` says
        # (`ptr.Deref(endpoint.Conditions.Serving, true)`: an absent one counts as true).
        if isinstance(conditions, dict) and conditions.get("serving") is False:
            continue
        for j, ip in enumerate(r.items(e, ("endpoints", i), "addresses")):
            if not isinstance(ip, str):
                r.error(("endpoints", i, "addresses", j), f"must be an IP address, got {show(ip)}")
            elif ip not in addresses:
                addresses.append(ip)
    out = []
    for j, p in enumerate(r.items(doc, (), "ports")):
        if not isinstance(p, dict):
            r.error(("ports", j), f"must be a mapping, got {show(p)}")
            continue
        number = r.integer(p, ("ports", j), "port", minimum=1, maximum=65535)
        if number is not None:
            out.append(
                EndpointSet(
                    namespace,
                    service,
                    str(p.get("name") or ""),
                    number,
                    tuple(addresses),
                    r.origin(("ports", j)),
                )
            )
    return out


# ------------------------------------------------------------------------------ entry


def _metadata(doc: Document, file: str | None, kind: str, out: Resources) -> tuple[str, str] | None:
    meta = doc.data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        out.issues.append(
            ConfigIssue(
                "metadata.name: required field is missing", file, doc.line_of(("metadata",)), kind
            )
        )
        return None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if ns is not None and (not isinstance(ns, str) or not ns):
        out.issues.append(
            ConfigIssue(
                f"metadata.namespace: must be a string, got {show(ns)}",
                file,
                doc.line_of(("metadata", "namespace")),
                f"{kind} {name}",
            )
        )
        return None
    return ns or "default", name


_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}

Handler = Callable[[_Reader, Document, str, str, str], None]


def _twin(r: _Reader, out: Resources, api: str, kind: str, namespace: str, name: str) -> str | None:
    """A Traefik resource whose kind, namespace and name were seen before.

    In the same API group that is an error (Kubernetes cannot hold both). Across the two
    groups it is what a cluster migrating from ``traefik.containo.us`` holds, and Traefik
    keeps the ``traefik.io`` one (v2 reads both groups and lets ``traefik.io`` win, v3
    reads only ``traefik.io``): "keep" the first, "replace" it with this one, or None
    when there is no twin (or an error was reported)."""
    key = (kind, namespace, name)
    seen = out.groups.get(key)
    here = r.origin(())
    if seen is None:
        out.groups[key] = (api, here)
        return None
    first_api, first = seen
    if first_api == api:
        r.error((), f"defined twice (first at {first.file}:{first.line})")
        return "keep"
    winner = "traefik.io/v1alpha1"
    out.warnings.append(
        f"{here.file}:{here.line}: {kind} {namespace}/{name}: defined in both "
        f"{first_api} ({first.file}:{first.line}) and {api}; the {winner} one is used, "
        "as in Traefik"
    )
    if api != winner:
        return "keep"
    out.groups[key] = (api, here)
    return "replace"


def parse_document(doc: Document, file: str | None, out: Resources) -> None:
    """Add the resource in ``doc`` to ``out`` (or its problems to ``out.issues``)."""
    data = doc.data
    if not isinstance(data, dict):
        out.issues.append(
            ConfigIssue(f"a document must be a mapping, got {show(data)}", file, doc.line)
        )
        return
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        out.issues.append(ConfigIssue("a document needs apiVersion and kind", file, doc.line))
        return
    if api in TRAEFIK_GROUPS:
        if kind in _OTHER_TRAEFIK_KINDS:
            out.warnings.append(
                f"{file}:{doc.line}: {kind}: skipped, not supported by "
                f"traefikservice-asgi: {_OTHER_TRAEFIK_KINDS[kind]}"
            )
            return
        if kind not in ("IngressRoute", "TraefikService", "ServersTransport"):
            out.issues.append(ConfigIssue(f'unknown kind "{kind}" in {api}', file, doc.line))
            return
    elif (api, kind) not in (
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
    ):
        logger.debug("%s:%d: skipping %s %s (not used for routing)", file, doc.line, api, kind)
        return
    ident = _metadata(doc, file, kind, out)
    if ident is None:
        return
    namespace, name = ident
    r = _Reader(doc, file, f"{kind} {namespace}/{name}", out)
    if api in TRAEFIK_GROUPS:
        for key in data:
            if key not in _TOP:
                r.error((key,), f"unknown field {show(str(key))}")
        if "spec" not in data:
            r.error(("spec",), "required field is missing")
            return
        twin = _twin(r, out, api, kind, namespace, name)
        if twin == "keep":
            return
        if kind == "TraefikService":
            ts = _traefik_service(r, data["spec"], namespace, name)
            if ts is not None:
                out.traefik_services[(namespace, name)] = ts
        elif kind == "ServersTransport":
            st = _servers_transport(r, data["spec"], namespace, name)
            if st is not None:
                out.transports[(namespace, name)] = st
        else:
            ir = _ingress_route(r, data["spec"], namespace, name, api)
            if ir is not None:
                if twin == "replace":
                    out.ingress_routes[:] = [
                        route
                        for route in out.ingress_routes
                        if (route.namespace, route.name) != (namespace, name)
                    ]
                out.ingress_routes.append(ir)
    elif kind == "Service":
        svc = _kube_service(r, data.get("spec"), namespace, name)
        if svc is not None:
            out.services[(namespace, name)] = svc
    elif kind == "Endpoints":
        out.endpoints.extend(_endpoints(r, data, namespace, name))
    elif kind in ("Secret", "ConfigMap"):
        target = out.secrets if kind == "Secret" else out.config_maps
        target[(namespace, name)] = _key_values(r, data, secret=kind == "Secret")
    else:
        out.endpoints.extend(_endpoint_slice(r, data, namespace))
