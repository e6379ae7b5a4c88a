"""Mirror copies are bounded in number, buffered bytes and time; the client never waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.support.asgi import call_gateway
from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_app, wait_for_copies
from tests.support.manifests import MIRROR_100
from traefikservice_asgi import create_app
from traefikservice_asgi.entrypoint.context import set_forward
from traefikservice_asgi.entrypoint.forwarding import prepare
from traefikservice_asgi.loadbalancer.body import Tee
from traefikservice_asgi.loadbalancer.mirror import Mirror, Mirroring
from traefikservice_asgi.loadbalancer.mirror_pool import MirrorLimits, MirrorPool


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"main"})


def request(body: bytes = b"") -> tuple[Scope, Receive]:
    headers = [(b"host", b"m.test")] + (
        [(b"content-length", str(len(body)).encode())] if body else []
    )
    scope: Scope = {
        "type": "http",
        "method": "POST" if body else "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
    }
    set_forward(scope, prepare(scope))
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> Message:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    return scope, receive


async def discard(message: Message) -> None:
    pass


def test_copies_over_the_in_flight_cap_are_dropped_and_counted() -> None:
    release = asyncio.Event()
    seen: list[int] = []

    async def stuck_mirror(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(1)
        await release.wait()

    async def go() -> MirrorPool:
        pool = MirrorPool(MirrorLimits(max_in_flight=3))
        m = Mirroring(answer, [Mirror("m", stuck_mirror, 100)], pool=pool)
        for _ in range(5):
            await m(*request(), discard)
        await asyncio.sleep(0)
        assert pool.in_flight == 3
        release.set()
        await pool.wait_idle(5)
        return pool

    pool = asyncio.run(go())
    assert seen == [1, 1, 1]
    assert pool.sent == 3
    assert pool.dropped == {"too many copies in flight": 2}


def test_a_copy_that_does_not_answer_in_time_is_cut_off_and_counted() -> None:
    async def hanging_mirror(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.Event().wait()

    async def go() -> MirrorPool:
        pool = MirrorPool(MirrorLimits(timeout=0.05))
        m = Mirroring(answer, [Mirror("m", hanging_mirror, 100)], pool=pool)
        await m(*request(b"x" * 5000), discard)
        assert pool.buffered == 5000
        await pool.wait_idle(5)
        return pool

    pool = asyncio.run(go())
    assert pool.dropped == {"no answer within 0.05 s": 1}
    assert pool.buffered == 0  # the copy's buffer went back to the budget


def test_bodies_beyond_the_buffer_budget_are_served_but_not_copied() -> None:
    got: list[bytes] = []

    async def mirror(scope: Scope, receive: Receive, send: Send) -> None:
        got.append((await receive())["body"])

    async def go() -> MirrorPool:
        pool = MirrorPool(MirrorLimits(buffer_budget=8000))
        hold = asyncio.Event()

        async def slow_mirror(scope: Scope, receive: Receive, send: Send) -> None:
            await hold.wait()
            await mirror(scope, receive, send)

        m = Mirroring(answer, [Mirror("m", slow_mirror, 100)], pool=pool)
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await m(*request(b"a" * 5000), send)  # holds 5000 bytes until the copy is sent
        await m(*request(b"b" * 5000), send)  # would need 10000: over the budget
        assert [msg["status"] for msg in sent if msg["type"] == "http.response.start"] == [200, 200]
        hold.set()
        await pool.wait_idle(5)
        return pool

    pool = asyncio.run(go())
    assert got == [b"a" * 5000]
    assert pool.dropped == {"mirror buffer budget exhausted": 1}
    assert pool.buffered == 0


def test_tee_gives_up_past_max_body_size_and_returns_its_bytes() -> None:
    async def go() -> tuple[Tee, MirrorPool, bytes]:
        pool = MirrorPool()
        _, receive = request(b"z" * 2500)
        tee = Tee(receive, 2000, pool)
        seen = b""
        while True:
            message = await tee()
            seen += message["body"]
            if not message["more_body"]:
                return tee, pool, seen

    tee, pool, seen = asyncio.run(go())
    assert seen == b"z" * 2500  # the main service got everything
    assert not tee.complete and tee.overflow == "body larger than maxBodySize 2000"
    assert tee.size == 0 and pool.buffered == 0


def test_shutdown_waits_then_cancels_copies_still_running() -> None:
    async def go() -> tuple[MirrorPool, list[str]]:
        events: list[str] = []

        async def mirror(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        pool = MirrorPool(MirrorLimits(shutdown_timeout=0.05))
        await Mirroring(answer, [Mirror("m", mirror, 100)], pool=pool)(*request(), discard)
        await pool.aclose()
        return pool, events

    pool, events = asyncio.run(go())
    assert events == ["cancelled"]
    assert pool.in_flight == 0


@pytest.mark.parametrize("kwargs", [{"max_in_flight": 0}, {"buffer_budget": -1}, {"timeout": 0}])
def test_limits_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        MirrorLimits(**kwargs)  # type: ignore[arg-type]


def test_copies_reuse_connections_from_a_pool_apart_from_the_main_requests(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.yaml").write_text(MIRROR_100)

    with RecordingBackend("main") as main, RecordingBackend("copy") as copy:
        app = create_app(
            tmp_path, backends={"default/main:80": main.url, "default/copy:80": copy.url}
        )
        with serve_app(app) as url:
            for n in range(1, 4):
                assert httpx.get(url, headers={"Host": "m.test"}).status_code == 200
                copy.wait_for_requests(n)
                wait_for_copies(app)
            transport = app.runtime.holder.direct
            assert transport is not None
            # One connection each, kept apart: copies went back to their own pool and
            # were reused (without it they are closed: 200 idle max, 0 for copies).
            assert (transport.idle_connections(), transport.idle_connections(copies=True)) == (
                1,
                1,
            )
        assert main.count == copy.count == 3


def test_copies_waiting_for_a_slow_mirror_hold_no_task(tmp_path: Path) -> None:
    """A copy in flight is its connection and a small job, not a suspended coroutine
    chain: with a thousand copies waiting for a slow mirror, those chains were what the
    garbage collector walked and what woke up for answers nobody reads."""
    (tmp_path / "m.yaml").write_text(MIRROR_100)
    with RecordingBackend("main") as main, RecordingBackend("copy", delay=30) as copy:
        app = create_app(
            tmp_path,
            backends={"default/main:80": main.url, "default/copy:80": copy.url},
            mirror_limits=MirrorLimits(shutdown_timeout=0.1),
        )

        async def scenario() -> None:
            for i in range(20):
                sent = await call_gateway(app, "POST" if i % 2 else "GET", b"x" * 100)
                assert sent[0]["status"] == 200
            await asyncio.to_thread(copy.wait_for_requests, 20)  # the mirror holds them
            ours = [
                task
                for task in asyncio.all_tasks()
                if "traefikservice_asgi" in task.get_coro().cr_code.co_filename  # type: ignore[union-attr]
            ]
            assert (copy.count, app.mirror_pool.in_flight, ours) == (20, 20, [])
            await app.aclose()  # 0.1 s, then the copies are cut off
            assert app.mirror_pool.in_flight == 0

        asyncio.run(scenario())


def test_every_waiter_hears_when_the_last_copy_ends() -> None:
    async def go() -> list[bool]:
        pool = MirrorPool()
        release = asyncio.Event()

        async def copy() -> None:
            await release.wait()

        job = pool.admit()
        assert job is not None
        job.run(copy())
        waiters = [asyncio.ensure_future(pool.wait_idle(60)) for _ in range(2)]
        await asyncio.sleep(0)  # both are waiting before the copy ends
        release.set()
        for _ in range(20):  # a few turns of the loop, not the 60 s timeout
            await asyncio.sleep(0)
        assert [waiter.done() for waiter in waiters] == [True, True]
        return [waiter.result() for waiter in waiters]

    assert asyncio.run(go()) == [True, True]
