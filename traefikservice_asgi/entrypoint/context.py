"""Every key this package puts in an ASGI scope or message, with its accessor.

A matched request carries its context through the service tree in the scope, as Go
carries it in the request's ``context.Context``; the gateway's own answers carry one
marker on their ``http.response.start`` message. ASGI servers and apps ignore keys they
do not know, and every key is namespaced ``traefikservice_asgi.``:

========================  ======  =====================================================
key                       where   set by / read by
========================  ======  =====================================================
:data:`FORWARD_KEY`       scope   the middleware (the :class:`~.forwarding.Forward` of
                                  the request), Traefik middlewares (rewriting it with
                                  :func:`replace_forward`) / every leaf, mirroring,
                                  failover
:data:`CLIENT_KEY`        scope   :func:`~.lifecycle.serve_watched` (the client's
                                  state) / mirroring, through :func:`client_gone`
:data:`COPY_KEY`          scope   mirroring, on a copy's scope / the leaf (the copies'
                                  own idle pool)
:data:`COPY_JOB_KEY`      scope   mirroring, when nothing below the mirror reads the
                                  answer / the leaf, which may detach the exchange
:data:`NO_BACKEND_ANSWER` message the leaf, on a proxy error it wrote itself /
                                  leasttime, which takes no time-to-first-byte from it
:data:`REQUEST_NOT_SENT`  message the leaf, on a proxy error before the request was
                                  written (no connection) / retry, which tries again
:data:`TUNNEL_KEY`        scope   ``serve``'s WebSocket protocol, in
                          and     ``scope["extensions"]`` (offered) / the leaf, which
                          message puts its :class:`~..transport.tunnel.Tunnel` in the
                                  ``websocket.accept`` for the server to join
========================  ======  =====================================================

Nothing else reads or writes these keys: use the functions below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Scope

from .forwarding import Forward, prepare

if TYPE_CHECKING:
    from ..loadbalancer.mirror_pool import CopyJob
    from ..transport.tunnel import Tunnel

__all__ = [
    "CLIENT_KEY",
    "ClientState",
    "COPY_JOB_KEY",
    "COPY_KEY",
    "FORWARD_KEY",
    "NO_BACKEND_ANSWER",
    "REQUEST_NOT_SENT",
    "TUNNEL_KEY",
    "as_copy",
    "client_gone",
    "copy_job",
    "copy_scope",
    "forward_of",
    "is_copy",
    "is_no_backend_answer",
    "is_request_not_sent",
    "offers_tunnel",
    "set_client_state",
    "replace_forward",
    "set_forward",
    "tunnel_accept",
    "tunnel_of",
    "without_body",
]

FORWARD_KEY = "traefikservice_asgi.forward"
"""Scope: the request's :class:`~.forwarding.Forward`, computed once when a route matched."""

CLIENT_KEY = "traefikservice_asgi.client"
"""Scope: the :class:`ClientState` of a watched request."""

COPY_KEY = "traefikservice_asgi.copy"
"""Scope: set in the scope a mirror copy is sent with; its connection goes back to the
copies' own idle pool (see ``GatewayTransport``), not to the main requests' one."""

COPY_JOB_KEY = "traefikservice_asgi.copy_job"
"""Scope: the copy's :class:`~..loadbalancer.mirror_pool.CopyJob`, set only when nothing
between the mirror and its leaves reads the answer (the builder decides, from each
node's ``reads_answers``): the leaf may then hand its exchange to the transport and
return at once, instead of waiting for an answer it would throw away."""

NO_BACKEND_ANSWER = "traefikservice_asgi.no_backend_answer"
"""Message: set in the ``http.response.start`` of a proxy error. The gateway wrote it
because the backend never answered, so it is not the server's first byte (leasttime
takes no TTFB sample from it, as Go's ``GotFirstResponseByte`` never fires)."""

REQUEST_NOT_SENT = "traefikservice_asgi.request_not_sent"
"""Message: set in the ``http.response.start`` of a proxy error when no byte of the
request reached the server (no connection could be made: Go's ``httptrace``
``WroteHeaders`` never fired), so Traefik's ``retry`` tries again."""

TUNNEL_KEY = "traefikservice_asgi.tunnel"
"""An ASGI extension of ``serve``'s own WebSocket protocol: offered in a websocket
scope's ``extensions``, it lets the leaf answer with the backend's ``101`` and a
:class:`~..transport.tunnel.Tunnel` (in the ``websocket.accept`` message, under this
key) that the server joins to the client's connection, as Traefik hijacks it. Under any
other ASGI server it is absent and WebSockets are relayed message by message."""


class ClientState:
    """Per request: has the body been read, is the response complete, did the client go."""

    __slots__ = ("body_done", "gone", "response_done")

    def __init__(self, body_done: bool) -> None:
        self.body_done = body_done
        self.response_done = False
        self.gone = False


def forward_of(scope: Scope) -> Forward:
    """The :class:`~.forwarding.Forward` of a scope, computed here if no route computed
    it (a leaf used on its own, e.g. in a test)."""
    forward: Forward | None = scope.get(FORWARD_KEY)
    if forward is None:
        forward = prepare(scope, check_host=False)  # no entry point, no server checks
    return forward


def set_forward(scope: Scope, forward: Forward) -> None:
    """Carry ``forward`` in ``scope`` (the middleware, once a route matched)."""
    scope[FORWARD_KEY] = forward


copy_scope: Callable[[Scope], Scope] = dict.copy  # type: ignore[assignment]
"""A copy of ``scope`` (a dict), for a middleware to change: ``dict.copy``, a third
cheaper than ``{**scope, key: value}``."""


def replace_forward(scope: Scope, **changes: Any) -> Scope:
    """A copy of ``scope`` whose :class:`~.forwarding.Forward` has ``changes`` (its
    fields: ``target``, ``headers``, ``host``...): how a middleware rewrites what the
    backends will receive. The scope it was given is left as it was."""
    return {**scope, FORWARD_KEY: forward_of(scope).evolve(**changes)}


def without_body(scope: Scope) -> Scope:
    """A copy of ``scope`` whose request has no body and says so in its framing."""
    forward = forward_of(scope)
    return {**scope, FORWARD_KEY: forward.evolve(content_length=None, chunked=False)}


def set_client_state(scope: Scope, state: ClientState) -> None:
    """Carry the watched client's state in ``scope``."""
    scope[CLIENT_KEY] = state


def client_gone(scope: Scope) -> bool:
    """Whether the client of this request is known to have disconnected."""
    state: ClientState | None = scope.get(CLIENT_KEY)
    return state is not None and state.gone


def as_copy(scope: Scope, job: CopyJob | None = None) -> Scope:
    """The scope a mirror copy is sent with; with ``job``, a leaf may detach it."""
    if job is None:
        return {**scope, COPY_KEY: True}
    return {**scope, COPY_KEY: True, COPY_JOB_KEY: job}


def is_copy(scope: Scope) -> bool:
    """Whether ``scope`` is a mirror copy's."""
    return COPY_KEY in scope


def copy_job(scope: Scope) -> CopyJob | None:
    """The job a leaf may detach this copy's exchange onto, if any."""
    job: CopyJob | None = scope.get(COPY_JOB_KEY)
    return job


def is_no_backend_answer(message: Message) -> bool:
    """Whether an ``http.response.start`` was written by the gateway, not a backend."""
    return bool(message.get(NO_BACKEND_ANSWER))


def is_request_not_sent(message: Message) -> bool:
    """Whether a proxy error's ``http.response.start`` says the request was never sent."""
    return bool(message.get(REQUEST_NOT_SENT))


def offers_tunnel(scope: Scope) -> bool:
    """Whether the ASGI server can hand the client's connection to a tunnel."""
    return TUNNEL_KEY in scope.get("extensions", ())


def tunnel_accept(headers: list[tuple[bytes, bytes]], tunnel: Tunnel) -> Message:
    """The ``websocket.accept`` that makes the server write ``101 Switching Protocols``
    with ``headers`` (the backend's, as received) and join ``tunnel``."""
    return {"type": "websocket.accept", "headers": headers, TUNNEL_KEY: tunnel}


def tunnel_of(message: Message) -> Tunnel | None:
    """The tunnel a ``websocket.accept`` asks the server to join, if any."""
    tunnel: Tunnel | None = message.get(TUNNEL_KEY)
    return tunnel
