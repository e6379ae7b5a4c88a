"""``stripPrefix`` (Traefik's ``pkg/middlewares/stripprefix``): the first prefix the
decoded path starts with is removed from ``Path`` and, when set, from ``RawPath`` (as
many escaped bytes as the prefix has characters), a leading ``/`` kept; the prefix goes
to the backend in ``X-Forwarded-Prefix``. A path that Go's ``URL.JoinPath()`` would
clean differently once stripped (``/api/../x`` -> ``/../x``) is answered
``400 Bad Request``. ``forceSlash`` (deprecated) always leaves a ``/``."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import StripPrefix as StripPrefixConfig
from ..entrypoint.context import FORWARD_KEY, forward_of, replace_forward
from ..responses import send_go_error
from ..rules._request import _PATH_SAFE_BYTES, only_bytes_of
from ._url import RequestURL, ensure_leading_slash

__all__ = ["FORWARDED_PREFIX", "StripPrefix", "encoded_prefix_len", "stripped_scope"]

FORWARDED_PREFIX = b"x-forwarded-prefix"


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
    def __init__(self, app: ASGIApp, config: StripPrefixConfig) -> None:
        self.app = app
        self.prefixes = tuple(p.encode() for p in config.prefixes)
        self.force_slash = config.force_slash

    def _stripped(self, rest: bytes) -> bytes:
        if self.force_slash:
            return b"/" + rest.removeprefix(b"/")
        return ensure_leading_slash(rest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        path, sep, query = forward.target.partition(b"?")
        if only_bytes_of(path, _PATH_SAFE_BYTES):
            # The usual target: nothing escaped, so Path and the target's path are the
            # same bytes and RawPath is empty; what follows is the general case below,
            # with every step that would change nothing left out.
            for prefix in self.prefixes:
                if path.startswith(prefix):
                    stripped = self._stripped(path[len(prefix) :])
                    if b"//" in stripped or b"/." in stripped:
                        break  # URL.JoinPath may clean it: the general case decides
                    target = (stripped or b"/") + (b"?" + query if sep else b"")
                    headers = [*forward.headers, (FORWARDED_PREFIX, prefix)]
                    scope = {
                        **scope,
                        FORWARD_KEY: forward.evolve(target=target, headers=headers),
                    }
                    await self.app(scope, receive, send)
                    return
            else:
                await self.app(scope, receive, send)
                return
        url = RequestURL.of(forward.target)
        for prefix in self.prefixes:
            if url.path.startswith(prefix):
                raw = url.raw_path
                if raw:
                    raw = self._stripped(raw[encoded_prefix_len(raw, prefix) :])
                path = self._stripped(url.path[len(prefix) :])
                stripped_one = stripped_scope(scope, url, prefix, path, raw)
                if stripped_one is None:
                    await send_go_error(send, 400, "Bad Request")
                    return
                scope = stripped_one
                break
        await self.app(scope, receive, send)
