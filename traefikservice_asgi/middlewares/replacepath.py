"""``replacePath`` (Traefik's ``pkg/middlewares/replacepath``): the backend receives
``path`` (as written, escaped) instead of the request's path, the query kept; the path
it replaced (escaped) goes in ``X-Replaced-Path``. A ``path`` Go cannot unescape is
answered ``500`` with Go's ``invalid URL escape "%zz"``, on every request, as Traefik."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import ReplacePath as ReplacePathConfig
from ..entrypoint.context import forward_of, replace_forward
from ..responses import send_go_error
from ._url import RequestURL, path_unescape, unescape_error

__all__ = ["REPLACED_PATH", "ReplacePath"]

REPLACED_PATH = b"x-replaced-path"


class ReplacePath:
    def __init__(self, app: ASGIApp, config: ReplacePathConfig) -> None:
        self.app = app
        self.raw = config.path.encode()
        self.path = path_unescape(self.raw)
        self.error = unescape_error(self.raw)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        url = RequestURL.of(forward.target)
        replaced = url.raw_path or url.escaped_path()
        if self.path is None:
            await send_go_error(send, 500, self.error or "invalid URL escape")
            return
        url = url.with_path(self.path, self.raw)
        scope = replace_forward(
            scope,
            target=url.request_uri(),
            headers=[*forward.headers, (REPLACED_PATH, replaced)],
        )
        await self.app(scope, receive, send)
