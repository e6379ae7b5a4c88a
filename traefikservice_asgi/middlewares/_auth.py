"""What Traefik's ``basicAuth`` and ``digestAuth`` share (``pkg/middlewares/auth``):
the default realm, go-http-auth's 401 answer, and what a successful check changes on
the request (``headerField``, ``removeHeader``)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Send

__all__ = ["AUTHORIZATION", "DEFAULT_REALM", "authenticated_headers", "first", "send_unauthorized"]

DEFAULT_REALM = "traefik"
"""Traefik's ``defaultRealm``, when ``realm`` is empty."""

AUTHORIZATION = b"authorization"

_UNAUTHORIZED = b"401 Unauthorized\n"  # go-http-auth's NormalHeaders.UnauthResponse

Headers = Sequence[tuple[bytes, bytes]]


def first(headers: Headers, name: bytes) -> bytes:
    """Go's ``Header.Get``: the first value of ``name`` (lowercase), or b""."""
    return next((value for key, value in headers if key == name), b"")


def authenticated_headers(
    headers: Headers, user: bytes, header_field: bytes, remove_header: bool
) -> list[tuple[bytes, bytes]]:
    """The request's headers once ``user`` is authenticated: the user's name in
    ``header_field`` (any value the client sent there removed) and, with
    ``remove_header``, no ``Authorization``."""
    out = list(headers)
    if header_field:
        out = [(k, v) for k, v in out if k != header_field]
        out.append((header_field, user))
    if remove_header:
        out = [(k, v) for k, v in out if k != AUTHORIZATION]
    return out


async def send_unauthorized(send: Send, challenge: bytes) -> None:
    """go-http-auth's ``RequireAuth``: 401, ``text/plain``, the ``WWW-Authenticate``
    challenge, the body ``401 Unauthorized\\n``."""
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"www-authenticate", challenge),
                (b"content-length", str(len(_UNAUTHORIZED)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAUTHORIZED})
