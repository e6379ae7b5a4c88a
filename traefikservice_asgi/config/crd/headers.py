"""The ``headers`` middleware's spec (Traefik's ``dynamic.Headers``), read into
:class:`~..middlewares.Headers`.

What Traefik refuses only when it builds the middleware for a router (that router is
then not served) is kept for the resolver (a warning when no route uses the Middleware,
an error naming the route that does): a spec that enables nothing (``headers
configuration not valid``) and an ``accessControlAllowOriginListRegex`` Go does not
compile. Refused at load, as the CRD's schema refuses it: a negative ``stsSeconds``. A
header name that is not an HTTP token, or a value with CR, LF or NUL, is refused at load
too: Traefik loads it and then fails every request that carries it
(docs/differences.md). The options Traefik v3 removed but 3.7 still
reads (``sslRedirect``, ``sslTemporaryRedirect``, ``sslHost``, ``sslForceHost``,
``featurePolicy``) do nothing there: a warning each, and they only count, as in
Traefik, towards the spec enabling something.
"""

from __future__ import annotations

import re
from typing import Any

from ...rules._re2 import RegexError, compile_re2
from .._fields import Reader, show
from .._yaml import Path
from ..middlewares import Headers

__all__ = ["headers"]

_LISTS = {
    "accessControlAllowHeaders": "access_control_allow_headers",
    "accessControlAllowMethods": "access_control_allow_methods",
    "accessControlAllowOriginList": "access_control_allow_origin_list",
    "accessControlAllowOriginListRegex": "access_control_allow_origin_list_regex",
    "accessControlExposeHeaders": "access_control_expose_headers",
    "allowedHosts": "allowed_hosts",
    "hostsProxyHeaders": "hosts_proxy_headers",
}
_FLAGS = {
    "accessControlAllowCredentials": "access_control_allow_credentials",
    "addVaryHeader": "add_vary_header",
    "stsIncludeSubdomains": "sts_include_subdomains",
    "stsPreload": "sts_preload",
    "forceSTSHeader": "force_sts_header",
    "frameDeny": "frame_deny",
    "contentTypeNosniff": "content_type_nosniff",
    "browserXssFilter": "browser_xss_filter",
    "isDevelopment": "is_development",
}
_TEXTS = {
    "customFrameOptionsValue": "custom_frame_options_value",
    "customBrowserXSSValue": "custom_browser_xss_value",
    "contentSecurityPolicy": "content_security_policy",
    "contentSecurityPolicyReportOnly": "content_security_policy_report_only",
    "publicKey": "public_key",
    "referrerPolicy": "referrer_policy",
    "permissionsPolicy": "permissions_policy",
}
_MAPS = {
    "customRequestHeaders": "custom_request_headers",
    "customResponseHeaders": "custom_response_headers",
    "sslProxyHeaders": "ssl_proxy_headers",
}
_REMOVED = {
    "sslRedirect": "use a redirectScheme middleware",
    "sslTemporaryRedirect": "use a redirectScheme middleware",
    "sslHost": "use a redirectRegex middleware",
    "sslForceHost": "use a redirectRegex middleware",
    "featurePolicy": "use permissionsPolicy",
}
_KNOWN = {*_LISTS, *_FLAGS, *_TEXTS, *_MAPS, *_REMOVED, "accessControlMaxAge", "stsSeconds"}

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\0]")


def _text(r: Reader, m: dict[str, Any], path: Path, key: str) -> str:
    value = m.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        r.error((*path, key), f"must be a string, got {show(value)}")
        return ""
    return value


def _header_map(r: Reader, m: dict[str, Any], path: Path, key: str) -> tuple[tuple[str, str], ...]:
    value = m.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.error((*path, key), f"must be a mapping of header names to values, got {show(value)}")
        return ()
    out = []
    for name, text in value.items():
        where = (*path, key, str(name))
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            r.error(where, f"not a valid HTTP header name: {show(name)}")
        elif not isinstance(text, str):
            r.error(where, f'must be a string ("" removes the header), got {show(text)}')
        elif _BAD_VALUE.search(text):
            r.error(where, f"a header value cannot hold CR, LF or NUL, got {show(text)}")
        else:
            out.append((name, text))
    return tuple(out)


def _removed_enables(r: Reader, m: dict[str, Any], path: Path) -> bool:
    """Warn about each removed option; whether one would count as a secure header."""
    enables = False
    for key, instead in _REMOVED.items():
        if key not in m:
            continue
        if key in ("sslHost", "featurePolicy"):
            enables |= bool(_text(r, m, path, key))
        else:
            enables |= r.boolean(m, path, key, False)
        r.warn((*path, key), f"deprecated and without effect since Traefik v3: {instead}")
    return enables


def headers(r: Reader, value: Any, path: Path) -> Headers | None:
    """``spec.headers``: every field of Traefik 3.7's ``dynamic.Headers``."""
    m = r.mapping(value, path, _KNOWN)
    if m is None:
        return None
    fields: dict[str, Any] = {}
    for key, name in _LISTS.items():
        fields[name] = r.strings(m, path, key)
    for key, name in _FLAGS.items():
        fields[name] = r.boolean(m, path, key, False)
    for key, name in _TEXTS.items():
        fields[name] = _text(r, m, path, key)
    for key, name in _MAPS.items():
        fields[name] = _header_map(r, m, path, key)
    fields["access_control_max_age"] = r.integer(m, path, "accessControlMaxAge")
    sts = r.integer(m, path, "stsSeconds", minimum=0)
    fields["sts_seconds"] = sts or 0
    removed = _removed_enables(r, m, path)
    for i, pattern in enumerate(fields["access_control_allow_origin_list_regex"]):
        try:
            compile_re2(pattern)
        except RegexError as exc:  # NewHeader: its routers are not served
            r.cannot_build(
                (*path, "accessControlAllowOriginListRegex", i),
                f"error occurred during origin parsing: error parsing regexp: {exc.message}",
            )
    spec = Headers(**fields)
    secure = removed or m.get("stsSeconds") is not None or _has_secure_headers(spec)
    maps = any(m.get(key) for key in _MAPS)  # a refused entry is reported, not "not valid"
    if not (secure or maps or spec.has_custom_headers or spec.has_cors_headers):
        # Traefik's headers.New: "headers configuration not valid", its routers are not
        # served.
        r.cannot_build(path, "headers configuration not valid (it sets no header)")
    return spec


def _has_secure_headers(spec: Headers) -> bool:
    """Traefik's ``HasSecureHeadersDefined`` (``stsSeconds`` and the removed options
    are checked by the reader: a ``stsSeconds: 0`` given counts)."""
    return bool(
        spec.allowed_hosts
        or spec.hosts_proxy_headers
        or spec.ssl_proxy_headers
        or spec.sts_include_subdomains
        or spec.sts_preload
        or spec.force_sts_header
        or spec.frame_deny
        or spec.custom_frame_options_value
        or spec.content_type_nosniff
        or spec.browser_xss_filter
        or spec.custom_browser_xss_value
        or spec.content_security_policy
        or spec.content_security_policy_report_only
        or spec.public_key
        or spec.referrer_policy
        or spec.permissions_policy
        or spec.is_development
    )
