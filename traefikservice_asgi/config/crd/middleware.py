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

from ...rules._re2 import RegexError, compile_re2
from .._fields import Reader, show
from .._yaml import Path
from ..middlewares import (
    AddPrefix,
    ChainSpec,
    MiddlewareRef,
    MiddlewareResource,
    MiddlewareSpec,
    RedirectRegex,
    RedirectScheme,
    ReplacePath,
    ReplacePathRegex,
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
