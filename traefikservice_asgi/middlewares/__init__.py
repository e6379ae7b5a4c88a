"""Traefik's HTTP middlewares (the ``Middleware`` CRD), one module per kind.

Every middleware is a pure ASGI class in Starlette's style: ``__init__(app, config)``
takes the next app and the kind's frozen config (:mod:`..config.middlewares`) and
precomputes everything; ``__call__`` checks ``scope["type"]`` first and hands anything
it does not own to ``app`` untouched. A middleware that rewrites the request changes
the request's :class:`~..entrypoint.forwarding.Forward` with
:func:`~..entrypoint.context.replace_forward` (a new scope for the next app; the leaf
sends what it finds there); one that changes the answer wraps ``send``; one that answers
itself (a redirect) never calls ``app``.

:data:`MIDDLEWARES` maps each kind (the CRD's spec key) to its class, and :func:`wrap`
puts a route's or a service's middlewares around its handler, the first one outermost,
as Traefik's ``BuildMiddlewareChain``. The builder calls :func:`wrap` once per route (and
once per service), so a stateful middleware (a rate limiter) gets one instance per
route even when routes share one ``Middleware`` resource, as each Traefik router builds
its own chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import ErrorPage, Middleware
from ..config.middlewares import RateLimit as RateLimitConfig
from ..config.models import Service
from ..loadbalancer._child import direct_call
from .addprefix import AddPrefix
from .basicauth import BasicAuth
from .buffering import Buffering
from .circuitbreaker import CircuitBreaker
from .compress import Compress
from .contenttype import ContentType
from .customerrors import CustomErrors
from .digestauth import DigestAuth
from .encodedcharacters import EncodedCharacters
from .forwardauth import ForwardAuth
from .headers import Headers
from .inflightreq import InFlightReq
from .ipallowlist import IPAllowList, IPWhiteList
from .plugin import Plugin
from .ratelimit import RateLimit
from .redirect import RedirectRegex, RedirectScheme
from .replacepath import ReplacePath
from .replacepathregex import ReplacePathRegex
from .retry import Retry
from .stripprefix import StripPrefix
from .stripprefixregex import StripPrefixRegex

__all__ = ["MIDDLEWARES", "MiddlewareClass", "ServiceBuilder", "wrap"]

ServiceBuilder = Callable[[Service], ASGIApp]
"""Builds a service of the configuration (the builder's, memoised by name): what
``errors`` needs for its page service, as Traefik's ``serviceBuilder``."""


class MiddlewareClass(Protocol):
    """What every middleware class is: an ASGI app built around the next one."""

    def __init__(self, app: ASGIApp, config: Any) -> None: ...

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]: ...


MIDDLEWARES: dict[str, type[MiddlewareClass]] = {
    "addPrefix": AddPrefix,
    "stripPrefix": StripPrefix,
    "stripPrefixRegex": StripPrefixRegex,
    "replacePath": ReplacePath,
    "replacePathRegex": ReplacePathRegex,
    "redirectRegex": RedirectRegex,
    "redirectScheme": RedirectScheme,
    "rateLimit": RateLimit,
    "retry": Retry,
    "headers": Headers,
    "contentType": ContentType,
    "encodedCharacters": EncodedCharacters,
    "basicAuth": BasicAuth,
    "digestAuth": DigestAuth,
    "forwardAuth": ForwardAuth,
    "compress": Compress,
    "errors": CustomErrors,
    "buffering": Buffering,
    "ipAllowList": IPAllowList,
    "ipWhiteList": IPWhiteList,
    "inFlightReq": InFlightReq,
    "circuitBreaker": CircuitBreaker,
    "plugin": Plugin,
}
"""Each middleware kind (its ``KIND``, the CRD spec key) -> its class. The config layer's
``MIDDLEWARE_KINDS`` lists the same keys (a test keeps them equal)."""


_HANDS_ON_ONCE = frozenset({"stripPrefix", "headers", "rateLimit"})
"""The kinds of middleware that call the next app at most once per request, and neither read nor
hand on their scope once it was called: below them, a scope their caller owned is still
owned (see :func:`wrap`)."""


def wrap(
    app: ASGIApp,
    middlewares: Sequence[Middleware],
    build: ServiceBuilder | None = None,
    *,
    owned: bool = False,
) -> ASGIApp:
    """``app`` behind ``middlewares``, the first one outermost (new instances, each
    given the next one's bound ``__call__``); an ``errors`` middleware gets its page
    service from ``build``.

    ``owned``: the chain's caller gives each request a scope of its own and does not
    read it once the chain has returned (the router's copy of a matched request's
    scope). A middleware with an ``owns_scope`` attribute then gets it True where every
    middleware before it is in :data:`_HANDS_ON_ONCE`: it may change the scope it is
    given instead of copying it, as nobody else holds that scope."""
    owning = []
    for middleware in middlewares:
        owning.append(owned)
        owned = owned and middleware.spec.KIND in _HANDS_ON_ONCE
    for middleware, owns in zip(reversed(middlewares), reversed(owning), strict=True):
        app = direct_call(app)  # what each middleware calls: its next's bound __call__
        spec = middleware.spec
        if isinstance(spec, ErrorPage):
            page = build(spec.service) if build is not None and spec.service else None
            app = CustomErrors(app, spec, page)
        elif isinstance(spec, RateLimitConfig):
            app = RateLimit(app, spec, name=middleware.name)  # its Redis keys hold the name
        else:
            app = MIDDLEWARES[spec.KIND](app, spec)
        if owns and hasattr(app, "owns_scope"):
            app.owns_scope = True
    return app
