"""Hostile input: arbitrary config text, YAML shapes, cookies and headers only ever meet
the documented errors, within bounded time and memory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from traefikservice_asgi import ConfigError, TraefikServiceMiddleware, load_config, load_config_text
from traefikservice_asgi.config.models import CookieOptions
from traefikservice_asgi.loadbalancer.sticky import request_cookie
from traefikservice_asgi.loadbalancer.wrr import Child, WeightedRoundRobin

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "name",
        "kind",
        "port",
        "weight",
        "namespace",
        "sticky",
        "cookie",
        "mirrors",
        "percent",
        "services",
        "weighted",
        "mirroring",
        "maxBodySize",
        "mirrorBody",
        "match",
        "routes",
        "scheme",
        "serversTransport",
        "passHostHeader",
    ]
)
spec_like = st.recursive(
    values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(field_names, inner, max_size=5)
    ),
    max_leaves=25,
)


def load(text: str) -> None:
    """Load ``text``: success, or a ConfigError that says what is wrong; nothing else."""
    error: ConfigError | None = None
    try:
        load_config_text(text, filename="fuzz.yaml")
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.issues
        assert all(str(issue) for issue in error.issues)


@FAST
@given(st.text(max_size=400))
def test_arbitrary_text_only_raises_config_error(text: str) -> None:
    load(text)


@FAST
@given(
    api=st.sampled_from(
        ["traefik.io/v1alpha1", "traefik.containo.us/v1alpha1", "v1", "discovery.k8s.io/v1"]
    ),
    kind=st.sampled_from(
        [
            "TraefikService",
            "IngressRoute",
            "ServersTransport",
            "Service",
            "Endpoints",
            "EndpointSlice",
            "Secret",
            "ConfigMap",
            "Middleware",
        ]
    ),
    metadata=st.one_of(
        values,
        st.fixed_dictionaries(
            {"name": st.text(max_size=8)}, optional={"namespace": values, "labels": values}
        ),
    ),
    spec=spec_like,
    extra=st.dictionaries(
        st.sampled_from(["subsets", "endpoints", "ports", "data", "stringData"]),
        spec_like,
        max_size=2,
    ),
)
def test_arbitrary_resource_shapes_only_raise_config_error(
    api: str, kind: str, metadata: Any, spec: Any, extra: dict[str, Any]
) -> None:
    document = {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec, **extra}
    load(yaml.safe_dump(document))


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from([b"cookie", b"Cookie", b"x"]), st.binary(max_size=60)), max_size=4
    )
)
def test_cookie_parsing_never_fails_and_returns_a_clean_value(
    headers: list[tuple[bytes, bytes]],
) -> None:
    value = request_cookie(headers, b"sticky")
    assert value is None or all(0x20 <= ord(c) < 0x7F and c not in '";\\' for c in value)


def _child(name: str):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


@FAST
@given(st.binary(max_size=80))
def test_a_forged_sticky_cookie_only_ever_selects_a_configured_child(forged: bytes) -> None:
    wrr = WeightedRoundRobin(
        [
            Child("a", _child("a"), 1),
            Child("b", _child("b"), 2),
            Child("hidden", _child("hidden"), 0),
        ],
        sticky=CookieOptions("s"),
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(wrr({"type": "http", "headers": [(b"cookie", b"s=" + forged)]}, receive, send))
    assert sent[1]["body"] in (b"a", b"b")


def test_a_50_mb_config_is_refused_at_once_with_the_reason(tmp_path: Path) -> None:
    big = tmp_path / "huge.yaml"
    with big.open("w") as f:
        line = "# " + "x" * 1021 + "\n"
        for _ in range(50 * 1024):
            f.write(line)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"huge\.yaml: file is 50\.0 MiB, more than the 10 MiB"):
        load_config(big)
    assert time.monotonic() - started < 2


def test_alias_bomb_is_refused_in_bounded_time_and_memory() -> None:
    import tracemalloc

    layers = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, 12):  # 9**12 nodes if expanded
        layers.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config_text("\n".join(layers))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - started < 20
    assert peak < 400 * 2**20


def test_header_values_with_cr_lf_never_reach_a_backend() -> None:
    reached: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)

    blog = Path(__file__).resolve().parents[1] / "examples" / "blog"
    app = TraefikServiceMiddleware(
        inner,
        blog,
        backends={
            "default/app-v1:80": "http://127.0.0.1:1",
            "default/app-v2:80": "http://127.0.0.1:2",
        },
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "scheme": "http",
        "client": ("127.0.0.1", 1),
        "headers": [
            (b"host", b"traefikservice-wrr.kubesre.lc"),
            (b"x-evil", b"a\r\nX-Injected: 1"),
        ],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b"400 Bad Request"  # as Go's server refuses a bad request
    assert reached == []
