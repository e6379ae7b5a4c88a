"""One options object for the middleware, create_app, serve and the CLI."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import get_type_hints

import httpx
import pytest

from traefikservice_asgi import MirrorLimits, create_app
from traefikservice_asgi.builder import SERVERS_STRATEGIES
from traefikservice_asgi.options import GatewayOptions, OptionKeywords

BLOG = Path(__file__).resolve().parents[1] / "examples" / "blog"
BACKENDS = {
    "default/app-v1:80": "http://127.0.0.1:9001",
    "default/app-v2:80": "http://127.0.0.1:9002",
}


def test_the_keywords_are_the_options_fields() -> None:
    fields = [f.name for f in dataclasses.fields(GatewayOptions)]
    assert list(get_type_hints(OptionKeywords)) == fields


def test_keywords_override_the_options_object_and_none_means_the_default() -> None:
    base = GatewayOptions(forwarded_insecure=True, mirror_limits=MirrorLimits(timeout=1))
    app = create_app(BLOG, base, backends=BACKENDS, mirror_limits=None)
    assert app.options == dataclasses.replace(base, backends=BACKENDS)
    assert app.mirror_pool.limits == MirrorLimits(timeout=1)


def test_options_that_cannot_leave_the_process_refuse_json() -> None:
    with pytest.raises(ValueError, match="client and rng"):
        GatewayOptions(rng=random.Random(0)).to_json()
    with pytest.raises(ValueError, match="client and rng"):
        GatewayOptions(client=httpx.AsyncClient()).to_json()


def test_every_servers_strategy_says_whether_it_reads_answers() -> None:
    assert {name: cls.reads_answers for name, cls in SERVERS_STRATEGIES.items()} == {
        "wrr": False,
        "hrw": False,
        "p2c": True,
        "leasttime": True,
    }
