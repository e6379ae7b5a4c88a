"""References to a ``Middleware`` (``routes[].middlewares``, a Service reference's
``middlewares``, ``chain.middlewares``): ``{name, namespace}``, read here for every
resource that holds them (kept apart from the Middleware reader, which itself reads
Service references: ``errors.service``)."""

from __future__ import annotations

from typing import Any

from .._fields import Reader
from .._yaml import Path
from ..middlewares import MiddlewareRef

__all__ = ["middleware_refs"]


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
