"""``basicAuth`` (Traefik's ``pkg/middlewares/auth/basic_auth.go``, on go-http-auth).

A request whose ``Authorization: Basic`` credentials match a user's htpasswd hash goes
on, its user's name in ``headerField`` when set and without ``Authorization`` with
``removeHeader``; any other is answered ``401`` with ``WWW-Authenticate: Basic
realm="<realm>"`` and go-http-auth's body. As in Traefik, an unknown user's password is
still checked, against the first user's hash, so the answer takes as long; concurrent
checks of the same password and hash share one computation (Traefik's singleflight).
bcrypt and MD5-crypt checks run on a thread, so they never stall the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import BasicAuth as BasicAuthConfig
from ..entrypoint.context import forward_of, replace_forward
from ._auth import (
    AUTHORIZATION,
    DEFAULT_REALM,
    authenticated_headers,
    first,
    send_unauthorized,
)
from ._htpasswd import check_secret, is_slow

__all__ = ["BasicAuth", "parse_basic_auth"]


def parse_basic_auth(value: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``Request.BasicAuth``: ``Basic `` (any case), standard base64 of
    ``user:password``; None when the header is not that."""
    if len(value) < 6 or value[:6].lower() != b"basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:], validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class BasicAuth:
    def __init__(self, app: ASGIApp, config: BasicAuthConfig) -> None:
        self.app = app
        users: dict[bytes, str] = {}
        for line in config.users:
            name, _, hashed = line.partition(":")
            users[name.encode()] = hashed
        self.users = users
        self.not_found_secret = next(iter(users.values()), "")
        realm = config.realm or DEFAULT_REALM
        self.challenge = b'Basic realm="' + realm.encode() + b'"'
        self.header_field = config.header_field.lower().encode()
        self.remove_header = config.remove_header
        self.checks: dict[tuple[bytes, str], asyncio.Future[bool]] = {}  # bcrypt in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forward = forward_of(scope)
        credentials = parse_basic_auth(first(forward.headers, AUTHORIZATION))
        if credentials is None or not await self.check(*credentials):
            await send_unauthorized(send, self.challenge)
            return
        headers = authenticated_headers(
            forward.headers, credentials[0], self.header_field, self.remove_header
        )
        await self.app(replace_forward(scope, headers=headers), receive, send)

    async def check(self, user: bytes, password: bytes) -> bool:
        """Traefik's ``checkPassword``: an unknown user (or one with an empty hash) is
        checked against the first user's hash and fails; a slow check (bcrypt,
        MD5-crypt) runs on a thread, once per (password, hash) at a time however many
        requests wait for it
        (a task of its own: a client that goes away does not cancel it for the others)."""
        secret = self.users.get(user, "")
        hashed = secret or self.not_found_secret
        if not is_slow(hashed):
            return check_secret(password, hashed) and bool(secret)
        key = (password, hashed)
        task = self.checks.get(key)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(check_secret, password, hashed))
            self.checks[key] = task
            task.add_done_callback(lambda _: self.checks.pop(key, None))
        match = await asyncio.shield(task)
        return match and bool(secret)
