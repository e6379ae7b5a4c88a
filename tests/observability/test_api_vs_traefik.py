"""``/api/http/routers`` and ``/api/http/services`` answer in Traefik 3.7.15's JSON
shapes: the real Traefik (``--api.insecure``) and the gateway's admin app on the same
YAML and backend URLs give the same objects, the provider's name excepted (Traefik's
file provider for the oracle, ``kubernetescrd`` for the gateway)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.runner import _recording_backends, requires_traefik
from tests.conformance.translate import translate_all
from tests.support.traefik import TraefikProcess
from traefikservice_asgi import create_app
from traefikservice_asgi.observability import ObservabilityOptions

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenario.yaml")
BACKENDS = {
    "default/app-primary:80": "primary",
    "default/app-canary:80": "canary",
    "default/app-v1:80": "v1",
    "default/app-v2:80": "v2",
    "default/app-v3:80": "v3",
}


def normalise(data: Any) -> Any:
    text = json.dumps(data).replace("@file", "@kubernetescrd")
    return json.loads(text.replace('"provider": "file"', '"provider": "kubernetescrd"'))


async def ours(urls: dict[str, Any], path: str) -> Any:
    app = create_app([str(SCENARIO)], backends=urls, observability=ObservabilityOptions())
    transport = httpx.ASGITransport(app=app.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        return (await client.get(path)).json()


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    out = {}
    with _recording_backends(BACKENDS) as (_, urls):
        dynamic = translate_all([SCENARIO], urls).dynamic
        with TraefikProcess(dynamic, tmp_path=tmp_path_factory.mktemp("api")) as traefik:
            for path in ("/api/http/routers", "/api/http/services"):
                theirs = httpx.get(f"{traefik.api_url}{path}", timeout=5).json()
                theirs = [
                    item
                    for item in theirs
                    if item.get("provider") == "file" and "oracle" not in item["name"]
                ]
                out[path] = (normalise(theirs), asyncio.run(ours(urls, path)))
    return out


def test_routers_as_traefik_lists_them(answers: dict[str, tuple[Any, Any]]) -> None:
    theirs, mine = answers["/api/http/routers"]
    assert sorted(mine, key=lambda r: r["name"]) == sorted(theirs, key=lambda r: r["name"])


def test_services_as_traefik_lists_them(answers: dict[str, tuple[Any, Any]]) -> None:
    theirs, mine = answers["/api/http/services"]
    assert {s["name"]: s for s in mine} == {s["name"]: s for s in theirs}
