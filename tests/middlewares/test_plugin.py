"""``plugin``: a Python plugin found by name (registered, or an installed distribution's
entry point), built with its resolved configuration, changing the request the backends
receive and the answer the client gets; a route whose plugin nothing provides refused
at load, naming how to provide it."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app, serve_cli
from traefikservice_asgi import ConfigError, create_app, load_config_text, register_plugin
from traefikservice_asgi.middlewares.plugin import (
    ENTRY_POINT_GROUP,
    find_plugin,
    plugin_problem,
    unregister_plugin,
)


class AddHeader:
    """A plugin as a user writes one: sets the request header its configuration names
    (to a Secret's value here), drops ``X-Drop``, may replace the path, answers 403 for
    ``deny``, and tells the client the path it was shown."""

    def __init__(self, app: ASGIApp, config: dict[str, Any]) -> None:
        self.app = app
        self.header = (config["header"].lower().encode(), config["value"].encode())
        self.path = config.get("path")
        self.deny = config.get("deny")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = scope["path"].encode()
        if scope["path"] == self.deny:
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b"denied by plugin"})
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"x-drop"]
        scope = {**scope, "headers": [*headers, self.header]}
        if self.path is not None:
            scope["path"] = self.path

        async def tell(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-plugin-saw", seen)]}
            await send(message)

        await self.app(scope, receive, tell)


def _doc(kind: str, name: str, spec: str) -> str:
    api = "v1" if kind == "Secret" else "traefik.io/v1alpha1"
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}}}\n{spec}\n---\n"


ROUTES = (
    _doc("Secret", "tok", "stringData: {token: s3cret}")
    + _doc("Middleware", "strip", "spec: {stripPrefix: {prefixes: [/api]}}")
    + _doc(
        "Middleware",
        "tag",
        'spec: {plugin: {PLUGIN: {header: X-Token, value: "urn:k8s:secret:tok:token", '
        "deny: /private}}}",
    )
    + _doc(
        "Middleware",
        "move",
        'spec: {plugin: {PLUGIN: {header: X-Moved, value: "yes", path: /moved}}}',
    )
    + """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop, namespace: default}
spec:
  routes:
    - {match: Host(`a.test`), middlewares: [{name: strip}, {name: tag}], services: [{name: app, port: 80}]}
    - {match: Host(`b.test`), middlewares: [{name: move}], services: [{name: app, port: 80}]}
"""
)


@pytest.fixture
def registered() -> Iterator[str]:
    name = "add-header-test"
    register_plugin(name, AddHeader)
    yield name
    unregister_plugin(name)


def test_a_registered_plugin_serves_through_the_gateway_under_uvicorn(
    registered: str, tmp_path: Path
) -> None:
    (tmp_path / "routes.yaml").write_text(ROUTES.replace("PLUGIN", registered))
    with RecordingBackend("app") as backend:
        app = create_app(str(tmp_path), backends={"default/app:80": backend.url})
        with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            answer = client.get("/api/items?q=1", headers={"Host": "a.test", "X-Drop": "1"})
            assert answer.status_code == 200 and answer.text == "Hello app\n"
            # after stripPrefix: the plugin is shown the request the backend receives
            assert answer.headers["x-plugin-saw"] == "/items"
            (got,) = backend.wait_for_requests(1)
            assert (got.path, got.query) == ("/items", "q=1")
            assert got.header("X-Token") == "s3cret"  # the Secret's value
            assert got.header("X-Drop") is None and got.header("X-Forwarded-Prefix") == "/api"

            moved = client.get("/a%20b?x=2", headers={"Host": "b.test"})
            assert moved.headers["x-plugin-saw"] == "/a b"
            got = backend.wait_for_requests(2)[1]
            assert (got.path, got.query, got.header("X-Moved")) == ("/moved", "x=2", "yes")

            denied = client.get("/api/private", headers={"Host": "a.test"})
            assert (denied.status_code, denied.text) == (403, "denied by plugin")
            assert len(backend.requests) == 2  # answered by the plugin


def test_a_route_whose_plugin_nothing_provides_is_a_located_error_saying_how(
    tmp_path: Path,
) -> None:
    (tmp_path / "routes.yaml").write_text(ROUTES.replace("PLUGIN", "nobody-provides-this"))
    with pytest.raises(ConfigError) as info:
        create_app(str(tmp_path), backends={"default/app:80": "http://127.0.0.1:9"})
    found = [str(issue) for issue in info.value.issues]
    assert len(found) == 2  # each route's reference
    assert found[0].startswith(
        f"{tmp_path / 'routes.yaml'}:26: IngressRoute default/shop: "
        'spec.routes[0].middlewares[1].name: middleware "default-tag@kubernetescrd": '
        "plugin: unknown plugin type: nobody-provides-this: no Python plugin provides it"
    )
    assert f'entry point group "{ENTRY_POINT_GROUP}"' in found[0]
    assert 'traefikservice_asgi.register_plugin("nobody-provides-this", factory)' in found[0]


def test_a_config_loaded_unchecked_still_refuses_to_build_an_unknown_plugin() -> None:
    config = load_config_text(
        ROUTES.replace("PLUGIN", "nobody-provides-this"),
        backends={"default/app:80": "http://127.0.0.1:9"},
    )
    with pytest.raises(ConfigError, match="unknown plugin type: nobody-provides-this"):
        create_app(config)


def test_a_factory_that_raises_fails_the_build_with_a_config_error_naming_the_plugin(
    registered: str,
) -> None:
    # AddHeader needs "header": the factory's KeyError is the plugin's refusal
    text = ROUTES.replace("PLUGIN", registered).replace("{header: X-Moved, ", "{")
    config = load_config_text(text, backends={"default/app:80": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError) as info:
        create_app(config)
    assert str(info.value.issues[0]) == (
        f"plugin: {registered}: the plugin refused its configuration: KeyError: 'header'"
    )


def test_register_plugin_refuses_what_cannot_be_a_plugin() -> None:
    with pytest.raises(ValueError, match="a plugin needs a name"):
        register_plugin("", AddHeader)
    with pytest.raises(TypeError, match="must be callable"):
        register_plugin("x", "not a factory")  # type: ignore[arg-type]


def _distribution(where: Path, plugin: str, target: str, module: str) -> None:
    """An installed distribution as importlib.metadata finds one on ``sys.path``: a
    module and a ``.dist-info`` whose ``entry_points.txt`` declares ``plugin``."""
    (where / "tsa_test_plugin.py").write_text(textwrap.dedent(module))
    info = where / "tsa_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tsa-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{plugin} = {target}\n")


PLUGIN_MODULE = """\
class Stamp:
    def __init__(self, app, config):
        self.app = app
        self.value = config["stamp"].encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "headers": [*scope["headers"], (b"x-stamp", self.value)]}
        await self.app(scope, receive, send)
"""


def test_an_installed_distributions_entry_point_provides_a_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _distribution(tmp_path, "stamp-ep", "tsa_test_plugin:Stamp", PLUGIN_MODULE)
    assert plugin_problem("stamp-ep") is not None  # not on sys.path yet
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugin_problem("stamp-ep") is None
    factory = find_plugin("stamp-ep")
    assert factory.__name__ == "Stamp" and factory.__module__ == "tsa_test_plugin"
    monkeypatch.delitem(sys.modules, "tsa_test_plugin")


def test_an_entry_point_that_does_not_import_is_named_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _distribution(tmp_path, "broken-ep", "tsa_test_plugin:Missing", PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = plugin_problem("broken-ep")
    assert problem is not None and problem.startswith(
        "the plugin broken-ep's entry point tsa_test_plugin:Missing cannot be loaded: "
        "AttributeError"
    )
    monkeypatch.delitem(sys.modules, "tsa_test_plugin", raising=False)


def test_serve_finds_an_entry_point_plugin_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _distribution(site, "stamp", "tsa_test_plugin:Stamp", PLUGIN_MODULE)
    (tmp_path / "routes.yaml").write_text(
        _doc("Middleware", "stamp", "spec: {plugin: {stamp: {stamp: from-entry-point}}}")
        + _doc(
            "IngressRoute",
            "shop",
            "spec: {routes: [{match: Host(`a.test`), middlewares: [{name: stamp}], "
            "services: [{name: app, port: 80}]}]}",
        )
    )
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    routes = [str(tmp_path / "routes.yaml")]
    with (
        RecordingBackend("app") as backend,
        serve_cli(routes, {"default/app:80": backend.url}) as url,
    ):
        answer = httpx.get(url + "/", headers={"Host": "a.test"}, timeout=10)
        assert answer.status_code == 200
        (got,) = backend.wait_for_requests(1)
        assert got.header("X-Stamp") == "from-entry-point"
