"""ipAllowList / ipWhiteList: who passes, and Traefik's refusal (status text body)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.asgi import receiver, run
from tests.support.asgi import scope as http_scope
from traefikservice_asgi.config.middlewares import (
    IPAllowList as IPAllowListConfig,
)
from traefikservice_asgi.config.middlewares import (
    IPStrategy,
)
from traefikservice_asgi.config.middlewares import (
    IPWhiteList as IPWhiteListConfig,
)
from traefikservice_asgi.entrypoint.context import set_forward
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.middlewares._source import IPChecker
from traefikservice_asgi.middlewares.ipallowlist import MAX_VERDICTS, IPAllowList, IPWhiteList


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def request(app: Any, client: str, xff: str | None = None, trusted: bool = False) -> list[Any]:
    headers = [(b"host", b"a.test")]
    if xff is not None:
        headers.append((b"x-forwarded-for", xff.encode()))
    scope = http_scope(headers=headers, client=(client, 40000))
    set_forward(scope, prepare(scope, trusted=lambda ip: trusted))
    return run(app, scope, receiver())


def allow(*ranges: str, **options: Any) -> IPAllowList:
    return IPAllowList(ok_app, IPAllowListConfig(ranges, **options))


@pytest.mark.parametrize(
    ("client", "passes"),
    [("10.1.2.3", True), ("10.255.0.1", True), ("192.168.0.7", True), ("192.168.0.8", False),
     ("11.0.0.1", False), ("::1", True), ("::2", False), ("::ffff:10.0.0.1", True)],
)  # fmt: skip
def test_the_peer_passes_when_in_a_range_or_one_of_the_ips(client: str, passes: bool) -> None:
    sent = request(allow("10.0.0.0/8", "192.168.0.7", "::1"), client)
    assert sent[0]["status"] == (200 if passes else 403)


def test_a_refusal_is_the_status_text_with_its_length_and_nothing_else() -> None:
    assert request(allow("10.0.0.1"), "10.0.0.2") == [
        {"type": "http.response.start", "status": 403, "headers": [(b"content-length", b"9")]},
        {"type": "http.response.body", "body": b"Forbidden"},
    ]
    sent = request(allow("10.0.0.1", reject_status_code=404), "10.0.0.2")
    assert (sent[0]["status"], sent[1]["body"]) == (404, b"Not Found")


def test_depth_reads_x_forwarded_for_only_when_the_entry_point_trusts_it() -> None:
    app = allow("10.0.0.0/8", ip_strategy=IPStrategy(depth=1))
    assert request(app, "127.0.0.1", "1.1.1.1, 10.0.0.5", trusted=True)[0]["status"] == 200
    assert request(app, "127.0.0.1", "10.0.0.5, 1.1.1.1", trusted=True)[0]["status"] == 403
    # Untrusted: the header is dropped, the IP is empty, which no range holds.
    assert request(app, "10.0.0.1", "10.0.0.5", trusted=False)[0]["status"] == 403
    depth2 = allow("10.0.0.0/8", ip_strategy=IPStrategy(depth=2))
    assert request(depth2, "127.0.0.1", "10.0.0.5, 1.1.1.1", trusted=True)[0]["status"] == 200


def test_excluded_ips_take_the_rightmost_entry_not_excluded() -> None:
    app = allow("10.0.0.0/8", ip_strategy=IPStrategy(excluded_ips=("1.1.1.1",)))
    assert request(app, "127.0.0.1", "10.0.0.5, 1.1.1.1", trusted=True)[0]["status"] == 200
    assert request(app, "127.0.0.1", "1.1.1.2, 10.0.0.5", trusted=True)[0]["status"] == 200
    assert request(app, "127.0.0.1", "10.0.0.5, 1.1.1.2", trusted=True)[0]["status"] == 403


def test_is_authorized_takes_the_host_of_host_port_as_go_splits_it() -> None:
    checker = IPChecker(("10.0.0.1", "fe80::/10"))
    assert checker.is_authorized("10.0.0.1:8080")
    assert checker.is_authorized("[fe80::1]:443")
    assert checker.is_authorized("fe80::1%eth0")  # netip.ParseAddr keeps the zone apart
    assert not checker.is_authorized("")
    assert not checker.is_authorized("[fe80::1]")  # no port: not split, not an IP
    assert not checker.is_authorized("10.0.0.1:80:80")


def test_ip_white_list_refuses_with_403() -> None:
    app = IPWhiteList(ok_app, IPWhiteListConfig(("10.0.0.1",)))
    assert request(app, "10.0.0.1")[0]["status"] == 200
    sent = request(app, "10.0.0.2")
    assert (sent[0]["status"], sent[1]["body"]) == (403, b"Forbidden")


def test_lifespan_scopes_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    run(IPAllowList(app, IPAllowListConfig(("10.0.0.1",))), {"type": "lifespan"})
    assert seen == ["lifespan"]


def test_verdicts_are_remembered_per_ip_within_a_bound() -> None:
    app = allow("10.0.0.0/8")
    for i in range(MAX_VERDICTS + 1):
        assert app.allows(f"10.0.{i // 256}.{i % 256}")
    assert len(app.verdicts) == 1  # emptied when full, then the last one kept
    assert not app.allows("11.0.0.1") and app.verdicts["11.0.0.1"] is False
