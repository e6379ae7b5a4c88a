"""``stripPrefixRegex`` (Traefik's ``pkg/middlewares/stripprefixregex``): the first
regexp whose leftmost match in the decoded path is non-empty and starts the path has
that match removed, as ``stripPrefix`` removes a prefix (``RawPath`` cut by as many
escaped characters, a leading ``/`` kept, ``X-Forwarded-Prefix``, ``400`` when Go's
``URL.JoinPath()`` would clean the stripped path differently)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import StripPrefixRegex as StripPrefixRegexConfig
from ..entrypoint.context import forward_of
from ..responses import send_go_error
from ..rules._re2 import compile_re2
from ._url import RequestURL, ensure_leading_slash
from .stripprefix import encoded_prefix_len, stripped_scope

__all__ = ["StripPrefixRegex"]


class StripPrefixRegex:
    def __init__(self, app: ASGIApp, config: StripPrefixRegexConfig) -> None:
        self.app = app
        self.expressions = tuple(compile_re2(pattern) for pattern in config.regex)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        url = RequestURL.of(forward_of(scope).target)
        for expression in self.expressions:
            spans = expression.submatch(url.path)
            if spans is None or spans[0][0] == spans[0][1]:
                continue
            prefix = url.path[spans[0][0] : spans[0][1]]
            if not url.path.startswith(prefix):
                continue
            path = ensure_leading_slash(url.path.replace(prefix, b"", 1))
            raw = url.raw_path
            if raw:
                raw = ensure_leading_slash(raw[encoded_prefix_len(raw, prefix) :])
            stripped = stripped_scope(scope, url, prefix, path, raw)
            if stripped is None:
                await send_go_error(send, 400, "Bad Request")
                return
            scope = stripped
            break
        await self.app(scope, receive, send)
