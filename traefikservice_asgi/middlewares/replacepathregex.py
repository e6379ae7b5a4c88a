"""``replacePathRegex`` (Traefik's ``pkg/middlewares/replacepathregex``): when
``regex`` matches the escaped path, every match is replaced by ``replacement`` (Go's
``ReplaceAllString``: ``$1``, ``${name}``, ``$$``) and the result is the backend's
escaped path, the query kept; the path it replaced goes in ``X-Replaced-Path``. A result
Go cannot unescape is answered ``500 invalid URL escape "%zz"``; one Go's
``URL.JoinPath()`` would clean differently (``/a/../b``) ``400 Bad Request``."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import ReplacePathRegex as ReplacePathRegexConfig
from ..entrypoint.context import forward_of, replace_forward
from ..responses import send_go_error
from ..rules._re2 import compile_re2
from ._url import RequestURL, path_unescape, unescape_error
from .replacepath import REPLACED_PATH

__all__ = ["ReplacePathRegex"]


class ReplacePathRegex:
    def __init__(self, app: ASGIApp, config: ReplacePathRegexConfig) -> None:
        self.app = app
        self.regexp = compile_re2(config.regex)
        self.replacement = config.replacement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        url = RequestURL.of(forward.target)
        current = url.raw_path or url.escaped_path()
        if self.regexp.submatch(current) is not None:
            raw = self.regexp.replace_all(current, self.replacement)
            path = path_unescape(raw)
            if path is None:
                await send_go_error(send, 500, unescape_error(raw) or "invalid URL escape")
                return
            url = url.with_path(path, raw)
            target = url.request_uri()
            if path and url.joined().path != path:
                await send_go_error(send, 400, "Bad Request")
                return
            scope = replace_forward(
                scope, target=target, headers=[*forward.headers, (REPLACED_PATH, current)]
            )
        await self.app(scope, receive, send)
