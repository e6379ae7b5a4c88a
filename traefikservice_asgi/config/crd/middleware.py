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

from collections.abc import Callable
from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..middlewares import (
    AddPrefix,
    ChainSpec,
    MiddlewareRef,
    MiddlewareResource,
    MiddlewareSpec,
    ReplacePath,
    StripPrefix,
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


def _chain(r: Reader, value: Any, path: Path) -> ChainSpec | None:
    m = r.mapping(value, path, {"middlewares"})
    if m is None:
        return None
    return ChainSpec(middleware_refs(r, m, path, "middlewares"))


SPEC_READERS: dict[str, SpecReader] = {
    "addPrefix": _add_prefix,
    "stripPrefix": _strip_prefix,
    "replacePath": _replace_path,
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
