"""``TraefikService`` (Traefik's ``pkg/provider/kubernetes/crd/traefikio/v1alpha1/
service.go`` and ``kubernetes.go``): exactly one of ``weighted``, ``mirroring``,
``failover``, ``highestRandomWeight``, each read as Traefik's CRD provider reads it."""

from __future__ import annotations

import re
from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..models import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_REQUEST_BODY_BYTES,
    DEFAULT_MIRROR_BODY,
    FailoverSpec,
    HRWSpec,
    MirroringSpec,
    MirrorRef,
    ServiceRef,
    TraefikService,
    WeightedSpec,
)
from .serviceref import LB_FIELDS, NOT_SUPPORTED_LB, service_ref, sticky_cookie

__all__ = ["traefik_service"]


_STATUS_RANGE = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")


def _status_ranges(r: Reader, e: dict[str, Any], path: Path) -> tuple[tuple[int, int], ...]:
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


def _failover(r: Reader, value: Any, namespace: str) -> FailoverSpec | None:
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
            refs.append(service_ref(r, f[key], (*path, key), namespace))
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
    return FailoverSpec(
        main, fallback, status, DEFAULT_MAX_REQUEST_BODY_BYTES if max_body is None else max_body
    )


def traefik_service(r: Reader, spec: Any, namespace: str, name: str) -> TraefikService | None:
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
            service_ref(r, s, (*path, "services", i), namespace)
            for i, s in enumerate(r.items(h, path, "services", required=True))
        ]
        parsed = HRWSpec(tuple(x for x in hrw_refs if x is not None))
    elif kinds[0] == "weighted":
        path = ("spec", "weighted")
        w = r.mapping(m["weighted"], path, {"services", "sticky"})
        if w is None:
            return None
        refs = [
            service_ref(r, s, (*path, "services", i), namespace)
            for i, s in enumerate(r.items(w, path, "services", required=True))
        ]
        sticky = (
            sticky_cookie(r, w["sticky"], (*path, "sticky"))
            if w.get("sticky") is not None
            else None
        )
        parsed = WeightedSpec(tuple(x for x in refs if x is not None), sticky)
    elif kinds[0] == "mirroring":
        path = ("spec", "mirroring")
        mm = r.mapping(
            m["mirroring"],
            path,
            LB_FIELDS | {"mirrors", "mirrorBody", "maxBodySize"},
            NOT_SUPPORTED_LB,
        )
        if mm is None:
            return None
        main_fields = {
            k: v for k, v in mm.items() if k not in ("mirrors", "mirrorBody", "maxBodySize")
        }
        main = service_ref(r, main_fields, path, namespace)
        mirrors: list[MirrorRef] = []
        for i, item in enumerate(r.items(mm, path, "mirrors")):
            mpath = (*path, "mirrors", i)
            ref = service_ref(r, item, mpath, namespace, extra={"percent"})
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
            mirror_body=r.boolean(mm, path, "mirrorBody", DEFAULT_MIRROR_BODY),
            max_body_size=DEFAULT_MAX_BODY_SIZE if max_body is None else max_body,
        )
    if parsed is None:
        return None
    return TraefikService(namespace, name, r.origin(()), parsed)
