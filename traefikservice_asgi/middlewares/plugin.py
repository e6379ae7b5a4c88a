"""``plugin``: Traefik's plugins, as Python ASGI middlewares.

Traefik runs a plugin's Go source under its Yaegi interpreter, found by name in its
static configuration, and calls its ``New(ctx, next, config, name)`` with the
Middleware's configuration. Here a plugin is a Python callable, a *factory*, registered
under the plugin's name: ``factory(app, config)`` returns the ASGI app that handles a
request and calls ``app`` (the rest of the route) to pass it on; ``config`` is the
plugin's configuration, secrets resolved, a new ``dict`` for each instance. A class
``__init__(self, app, config)`` with an async ``__call__`` is such a factory.

Factories come from :func:`register_plugin` (in the process that loads the
configuration) or from an installed distribution's entry point in the group
:data:`ENTRY_POINT_GROUP`, named as the plugin (``myplugin = "mypkg.plugin:MyPlugin"``):
the way Traefik's ``experimental.plugins`` name a plugin, without the download. A route
whose plugin no factory provides is refused at load (:func:`plugin_problem`, which the
gateway passes to the loader), with Traefik's ``unknown plugin type``.

The plugin sees the request as the backends will receive it (what the middlewares before
it did is there): ``headers`` (with ``host``, names lowercase), ``method``, ``path``,
``raw_path`` and ``query_string`` of the scope it is given are the request's. What it
changes in the scope it passes on (headers added, replaced or removed; the path or the
query) is what the backends receive, as a Go plugin changes ``req``. Answers go through
``send`` as with any ASGI middleware.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import Plugin as PluginConfig
from ..entrypoint.context import forward_of, replace_forward
from ..exceptions import ConfigError, ConfigIssue
from ..rules._request import _escape_path
from ._url import RequestURL

__all__ = [
    "ENTRY_POINT_GROUP",
    "Plugin",
    "PluginFactory",
    "find_plugin",
    "plugin_problem",
    "register_plugin",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = "traefikservice_asgi.plugins"
"""The entry point group in which a distribution declares its plugins, each by name."""

PluginFactory = Callable[[ASGIApp, dict[str, Any]], ASGIApp]
"""``factory(app, config)``: the plugin's ASGI app around ``app``, the rest of the route."""

_registered: dict[str, PluginFactory] = {}
_loaded: dict[str, PluginFactory] = {}  # entry points loaded once, by name


def register_plugin(name: str, factory: PluginFactory) -> None:
    """Provide the plugin ``name`` (what a Middleware's ``plugin: {name: ...}`` says)
    in this process; it takes precedence over an entry point of the same name."""
    if not name:
        raise ValueError("a plugin needs a name")
    if not callable(factory):
        raise TypeError(f"the plugin {name!r}'s factory must be callable, got {factory!r}")
    _registered[name] = factory


def unregister_plugin(name: str) -> None:
    """Forget the factory :func:`register_plugin` gave ``name`` (no error if none)."""
    _registered.pop(name, None)


def find_plugin(name: str) -> PluginFactory:
    """The factory of the plugin ``name``: registered, else an entry point of
    :data:`ENTRY_POINT_GROUP` (loaded once). Raises ``LookupError`` saying why not."""
    factory = _registered.get(name) or _loaded.get(name)
    if factory is not None:
        return factory
    points = [p for p in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if p.name == name]
    if not points:
        raise LookupError(
            f"unknown plugin type: {name}: no Python plugin provides it; install a package "
            f'declaring it in the entry point group "{ENTRY_POINT_GROUP}" '
            f'({name} = "module:factory"), or call '
            f'traefikservice_asgi.register_plugin("{name}", factory) before loading '
            "(see the Middlewares guide, Plugins)"
        )
    try:
        loaded = points[0].load()
    except Exception as exc:  # the plugin's own import failed: say so, at load
        raise LookupError(
            f"the plugin {name}'s entry point {points[0].value} cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(loaded):
        raise LookupError(
            f"the plugin {name}'s entry point {points[0].value} is not callable: {loaded!r}"
        )
    _loaded[name] = loaded
    return _loaded[name]


def plugin_problem(name: str) -> str | None:
    """What is wrong with the plugin ``name`` (None: it can be built): the loader's
    ``plugins`` check."""
    try:
        find_plugin(name)
    except LookupError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class _Shown:
    """The request as the plugin was shown it, to see what it changed."""

    headers: tuple[tuple[bytes, bytes], ...]
    method: str | None
    path: str
    raw_path: bytes
    query_string: bytes
    client_sent: dict[str, Any]  # the scope's own keys, as the client sent them


_RAW_KEYS = ("headers", "method", "path", "raw_path", "query_string")

_shown: ContextVar[_Shown] = ContextVar("traefikservice_asgi_plugin_shown")


class Plugin:
    """The plugin's app, given the request as the backends will receive it."""

    def __init__(self, app: ASGIApp, config: PluginConfig) -> None:
        try:
            factory = find_plugin(config.name)
        except LookupError as exc:
            raise ConfigError([ConfigIssue(f"plugin: {exc}")]) from exc
        self.name = config.name
        try:
            self.plugin = factory(_PassOn(app), config.config)
        except Exception as exc:  # Go: New's error fails the router; here, the build
            raise ConfigError(
                [
                    ConfigIssue(
                        f"plugin: {config.name}: the plugin refused its configuration: "
                        f"{type(exc).__name__}: {exc}"
                    )
                ]
            ) from exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.plugin(scope, receive, send)
            return
        forward = forward_of(scope)
        url = RequestURL.of(forward.target)
        host = [(b"host", forward.host)] if forward.host is not None else []
        shown = _Shown(
            (*host, *forward.headers, *forward.framing_headers()),
            forward.method if scope["type"] == "http" else None,
            url.path.decode("utf-8", "surrogateescape"),
            url.escaped_path(),
            url.query or b"",
            {key: scope[key] for key in _RAW_KEYS if key in scope},
        )
        view = {
            **scope,
            "headers": list(shown.headers),
            "path": shown.path,
            "raw_path": shown.raw_path,
            "query_string": shown.query_string,
        }
        if shown.method is not None:
            view["method"] = shown.method
        token = _shown.set(shown)
        try:
            await self.plugin(view, receive, send)
        finally:
            _shown.reset(token)


_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class _PassOn:
    """The ``app`` a plugin calls: what it changed in the scope becomes the request's
    :class:`~..entrypoint.forwarding.Forward` (the body's framing stays the gateway's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shown = _shown.get(None)
        if shown is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        changes: dict[str, Any] = {}
        headers = [(bytes(k).lower(), bytes(v)) for k, v in scope.get("headers", ())]
        if tuple(headers) != shown.headers:
            hosts = [v for k, v in headers if k == b"host"]
            changes["host"] = hosts[0] if hosts else None
            changes["headers"] = [(k, v) for k, v in headers if k != b"host" and k not in _FRAMING]
        if shown.method is not None and scope.get("method", shown.method) != shown.method:
            changes["method"] = scope["method"]
        target = _target(scope, shown)
        if target is not None:
            changes["target"] = target
        # The rest of the route reads the client's own request from the scope (as at
        # the entry point) and the changed one from the Forward, as after any middleware.
        scope = {**scope, **shown.client_sent}
        if changes:
            scope = replace_forward(scope, **changes)
        await self.app(scope, receive, send)


def _target(scope: Scope, shown: _Shown) -> bytes | None:
    """The new target when the plugin changed the path or the query, else None."""
    raw_path = scope.get("raw_path")
    path = scope.get("path", shown.path)
    query = scope.get("query_string", shown.query_string)
    raw_changed = raw_path is not None and raw_path != shown.raw_path
    if not raw_changed and path == shown.path and query == shown.query_string:
        return None
    if raw_path is not None and raw_changed:
        escaped = bytes(raw_path)
    else:
        escaped = _escape_path(path.encode("utf-8", "surrogateescape"))
    return escaped + (b"?" + bytes(query) if query else b"")
