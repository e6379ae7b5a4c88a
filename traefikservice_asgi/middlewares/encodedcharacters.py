"""``encodedCharacters`` (Traefik's ``pkg/middlewares/encodedcharacters``): a request
whose escaped path (Go's ``URL.EscapedPath``, after the entry point's normalisation
and the middlewares before this one) holds an encoded character that is not allowed
is answered ``400`` with an empty body and nothing forwarded. By default all seven are
refused: ``%2F`` (slash), ``%5C`` (backslash), ``%00``, ``%3B`` (semicolon), ``%25``
(percent), ``%3F`` (question mark), ``%23`` (hash), either case of hex digit; a ``%``
with fewer than two bytes after it is refused too. Nothing denied: the middleware
lets every request through."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import EncodedCharacters as EncodedCharactersConfig
from ..entrypoint.context import forward_of
from ._url import RequestURL

__all__ = ["EncodedCharacters", "denied_characters"]


def denied_characters(config: EncodedCharactersConfig) -> frozenset[bytes]:
    """Traefik's ``mapDeniedCharacters``: the escapes ``config`` does not allow."""
    denied: set[bytes] = set()
    for allowed, escapes in (
        (config.allow_encoded_slash, (b"%2F", b"%2f")),
        (config.allow_encoded_back_slash, (b"%5C", b"%5c")),
        (config.allow_encoded_null_character, (b"%00",)),
        (config.allow_encoded_semicolon, (b"%3B", b"%3b")),
        (config.allow_encoded_percent, (b"%25",)),
        (config.allow_encoded_question_mark, (b"%3F", b"%3f")),
        (config.allow_encoded_hash, (b"%23",)),
    ):
        if not allowed:
            denied.update(escapes)
    return frozenset(denied)


class EncodedCharacters:
    def __init__(self, app: ASGIApp, config: EncodedCharactersConfig) -> None:
        self.app = app
        self.denied = denied_characters(config)

    def refuses(self, escaped_path: bytes) -> bool:
        """Whether Traefik answers ``400`` for this escaped path."""
        i = escaped_path.find(b"%")
        while i != -1:
            if i + 2 >= len(escaped_path):
                return True
            if escaped_path[i : i + 3] in self.denied:
                return True
            i = escaped_path.find(b"%", i + 3)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.denied:
            await self.app(scope, receive, send)
            return
        if self.refuses(RequestURL.of(forward_of(scope).target).escaped_path()):
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
