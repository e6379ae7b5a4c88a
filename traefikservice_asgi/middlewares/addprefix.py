"""``addPrefix`` (Traefik's ``pkg/middlewares/addprefix``): the prefix goes in front of
the path the backend receives (``Path`` and, when set, ``RawPath``, each given a leading
``/``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import AddPrefix as AddPrefixConfig
from ..entrypoint.context import forward_of, replace_forward
from ._url import RequestURL, ensure_leading_slash

__all__ = ["AddPrefix"]


class AddPrefix:
    def __init__(self, app: ASGIApp, config: AddPrefixConfig) -> None:
        self.app = app
        self.prefix = config.prefix.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        url = RequestURL.of(forward_of(scope).target)
        raw = ensure_leading_slash(self.prefix + url.raw_path) if url.raw_path else b""
        url = url.with_path(ensure_leading_slash(self.prefix + url.path), raw)
        await self.app(replace_forward(scope, target=url.request_uri()), receive, send)
