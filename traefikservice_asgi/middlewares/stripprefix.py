"""``stripPrefix`` (Traefik's ``pkg/middlewares/stripprefix``): the first prefix the
decoded path starts with is removed from ``Path`` and, when set, from ``RawPath`` (as
many escaped bytes as the prefix has characters), a leading ``/`` kept; the prefix goes
to the backend in ``X-Forwarded-Prefix``. A path that Go's ``URL.JoinPath()`` would
clean differently once stripped (``/api/../x`` -> ``/../x``) is answered
``400 Bad Request``. ``forceSlash`` (deprecated) always leaves a ``/``."""

from __future__ import annotations

import re
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import StripPrefix as StripPrefixConfig
from ..entrypoint.context import FORWARD_KEY, copy_scope, forward_of, replace_forward
from ..entrypoint.forwarding import Forward
from ..responses import send_go_error
from ..rules._request import _PATH_SAFE_BYTES
from ._url import RequestURL, ensure_leading_slash

__all__ = ["FORWARDED_PREFIX", "StripPrefix", "encoded_prefix_len", "stripped_scope"]

FORWARDED_PREFIX = b"x-forwarded-prefix"

_MAY_CLEAN = re.compile(rb"//|/\.")
"""An empty, ``.`` or ``..`` segment may be in a path with a match: ``URL.JoinPath`` may
clean it. (A regex, not ``b"//" in path``: CPython 3.11's bytes ``in`` first tries its
operand as an int, raising and formatting a TypeError, 1,800 instructions.)"""


def encoded_prefix_len(raw_path: bytes, prefix: bytes) -> int:
    """Traefik's ``encodedPrefixLen``: the bytes of ``raw_path`` that hold as many
    characters as ``prefix`` has bytes, a ``%XX`` counting as one."""
    decoded = i = 0
    while i < len(raw_path) and decoded < len(prefix):
        i += 3 if raw_path[i : i + 1] == b"%" and i + 2 < len(raw_path) else 1
        decoded += 1
    return i


def stripped_scope(
    scope: Scope, url: RequestURL, prefix: bytes, path: bytes, raw_path: bytes
) -> Scope | None:
    """``scope`` with ``prefix`` stripped (``url`` now has ``path`` and ``raw_path``) and
    sent in ``X-Forwarded-Prefix``: what ``stripPrefix`` and ``stripPrefixRegex`` both
    do once they know the prefix. None when Go's ``URL.JoinPath()`` would clean the
    stripped path differently (the caller answers ``400``)."""
    url = url.with_path(path, raw_path)
    if path:
        url = url.joined()
    if path != url.path:
        return None
    headers = [*forward_of(scope).headers, (FORWARDED_PREFIX, prefix)]
    return replace_forward(scope, target=url.request_uri(), headers=headers)


class StripPrefix:
    """A plain callable returning the next app's awaitable (no coroutine of its own: the
    route's chain runs as deep as its middlewares that must await something)."""

    owns_scope = False
    """Set by :func:`~.wrap` where the scope it is given is its own to change."""

    def __init__(self, app: ASGIApp, config: StripPrefixConfig) -> None:
        self.app = app
        self.prefixes = tuple(p.encode() for p in config.prefixes)
        self.force_slash = config.force_slash
        # Per prefix, for the usual target: its length and the X-Forwarded-Prefix header.
        self._plain = tuple((p, len(p), [(FORWARDED_PREFIX, p)]) for p in self.prefixes)

    def _stripped(self, rest: bytes) -> bytes:
        if self.force_slash:
            return b"/" + rest.removeprefix(b"/")
        return ensure_leading_slash(rest)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] not in ("http", "websocket"):
            return self.app(scope, receive, send)
        forward: Forward | None = scope.get(FORWARD_KEY)
        if forward is None:
            forward = forward_of(scope)
        path, sep, query = forward.target.partition(b"?")
        if path.lstrip(_PATH_SAFE_BYTES):  # (only_bytes_of's test, a third of its cost)
            return self._escaped(scope, forward, receive, send)
        # The usual target: nothing escaped, so Path and the target's path are the same
        # bytes and RawPath is empty; what follows is the general case (_escaped), with
        # every step that would change nothing left out.
        for prefix, size, header in self._plain:
            if path[:size] == prefix:  # (startswith parses its arguments: twice the cost)
                rest = path[size:]
                if self.force_slash:
                    rest = b"/" + rest.removeprefix(b"/")
                elif rest and rest[:1] != b"/":
                    rest = b"/" + rest
                if _MAY_CLEAN.search(rest) is not None:
                    break  # URL.JoinPath may clean it: the general case decides
                if not self.owns_scope:
                    scope = copy_scope(scope)
                scope[FORWARD_KEY] = forward.with_target(
                    (rest or b"/") + sep + query, forward.headers + header
                )
                return self.app(scope, receive, send)
        else:
            return self.app(scope, receive, send)
        return self._escaped(scope, forward, receive, send)

    def _escaped(
        self, scope: Scope, forward: Forward, receive: Receive, send: Send
    ) -> Awaitable[None]:
        """The general case: a target with escapes (or one the JoinPath may clean)."""
        url = RequestURL.of(forward.target)
        for prefix in self.prefixes:
            if url.path.startswith(prefix):
                raw = url.raw_path
                if raw:
                    raw = self._stripped(raw[encoded_prefix_len(raw, prefix) :])
                path = self._stripped(url.path[len(prefix) :])
                stripped_one = stripped_scope(scope, url, prefix, path, raw)
                if stripped_one is None:
                    return send_go_error(send, 400, "Bad Request")
                scope = stripped_one
                break
        return self.app(scope, receive, send)
