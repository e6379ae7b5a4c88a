"""Mirroring copies exactly the requests Traefik copies (traefik-observed.md §C)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from traefikservice_asgi.entrypoint.context import copy_job, forward_of, is_copy
from traefikservice_asgi.loadbalancer.mirror import Mirror, Mirroring
from traefikservice_asgi.loadbalancer.mirror_pool import MirrorPool


class Recorder:
    """A stub service recording (request number, body, scope) of what it received."""

    def __init__(self, status: int = 200, fail: bool = False) -> None:
        self.seen: list[tuple[int, bytes, Scope]] = []
        self.status = status
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.seen.append((scope["n"], body, scope))
        if self.fail:
            raise RuntimeError("mirror exploded")
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"main"})


def _receiver(chunks: list[bytes]):  # type: ignore[no-untyped-def]
    queue = list(chunks)

    async def receive() -> Message:
        if not queue:
            return {"type": "http.disconnect"}
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    return receive


async def _drive(
    mirroring: Mirroring,
    tasks: MirrorPool,
    n: int,
    chunks: list[bytes] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    for i in range(1, n + 1):
        body = chunks if chunks is not None else [b""]
        scope = {"type": "http", "method": "POST", "headers": headers or [], "path": "/", "n": i}
        await mirroring(scope, _receiver(list(body)), send)
    await tasks.wait_idle(5)
    return sent


def _mirrored(percent: int, n: int) -> list[int]:
    main, mirror, tasks = Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("m", mirror, percent)], pool=tasks)
    asyncio.run(_drive(m, tasks, n))
    return [seen[0] for seen in mirror.seen]


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (10, [1, 11, 21]),
        (25, [1, 5, 9, 13, 17]),
        (33, [1, 4, 7, 10, 13, 16, 19]),
        (50, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]),
        (75, [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]),
        (0, []),
    ],
)
def test_mirror_percent_is_a_deterministic_counter(percent: int, expected: list[int]) -> None:
    assert _mirrored(percent, 21 if percent == 10 else 20) == expected


def test_mirror_100_percent_copies_every_request() -> None:
    assert _mirrored(100, 7) == [1, 2, 3, 4, 5, 6, 7]


def test_each_mirror_has_its_own_counter() -> None:
    main, m30, m50, tasks = Recorder(), Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("a", m30, 30), Mirror("b", m50, 50)], pool=tasks)
    asyncio.run(_drive(m, tasks, 20))
    # Observed 0-based 0 3 6 10 13 16 and 0 2 4 ... 18 (traefik-observed.md §C).
    assert [s[0] - 1 for s in m30.seen] == [0, 3, 6, 10, 13, 16]
    assert [s[0] - 1 for s in m50.seen] == list(range(0, 20, 2))


def test_mirror_gets_the_whole_body_and_main_too() -> None:
    main, mirror, tasks = Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("m", mirror, 100)], pool=tasks)
    asyncio.run(_drive(m, tasks, 1, [b"a" * 512, b"b" * 512], [(b"content-length", b"1024")]))
    assert main.seen[0][1] == mirror.seen[0][1] == b"a" * 512 + b"b" * 512


def test_body_over_max_body_size_is_served_but_not_mirrored() -> None:
    main, mirror, tasks = Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("m", mirror, 100)], pool=tasks, max_body_size=10)
    asyncio.run(_drive(m, tasks, 1, [b"x" * 600, b"y" * 424], [(b"content-length", b"1024")]))
    assert main.seen[0][1] == b"x" * 600 + b"y" * 424
    assert mirror.seen == []


def test_body_of_exactly_max_body_size_is_mirrored() -> None:
    main, mirror, tasks = Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("m", mirror, 100)], pool=tasks, max_body_size=5)
    asyncio.run(_drive(m, tasks, 1, [b"12345"], [(b"content-length", b"5")]))
    assert mirror.seen[0][1] == b"12345"


def test_mirror_body_false_sends_no_body_and_no_content_length() -> None:
    main, mirror, tasks = Recorder(), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("m", mirror, 100)], pool=tasks, mirror_body=False)
    asyncio.run(_drive(m, tasks, 1, [b"x" * 1024], [(b"content-length", b"1024")]))
    assert main.seen[0][1] == b"x" * 1024
    assert mirror.seen[0][1] == b""
    forward = forward_of(mirror.seen[0][2])
    assert not forward.has_body
    assert (b"content-length", b"1024") not in forward.framing_headers()


def test_copies_are_sent_after_the_main_response_and_their_answers_discarded() -> None:
    order: list[str] = []
    main = Recorder()
    tasks = MirrorPool()

    async def mirror(scope: Scope, receive: Receive, send: Send) -> None:
        order.append("mirror")
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"mirror answer"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        order.append(message["type"])
        sent.append(message)

    async def go() -> None:
        m = Mirroring(main, [Mirror("m", mirror, 100)], pool=tasks)
        await m({"type": "http", "method": "GET", "headers": [], "n": 1}, _receiver([b""]), send)
        await tasks.wait_idle(5)

    asyncio.run(go())
    assert order == ["http.response.start", "http.response.body", "mirror"]
    assert [m.get("body") for m in sent if m["type"] == "http.response.body"] == [b"main"]


def test_a_failing_mirror_does_not_stop_the_next_one_nor_touch_the_client() -> None:
    main, broken, healthy, tasks = Recorder(), Recorder(fail=True), Recorder(), MirrorPool()
    m = Mirroring(main, [Mirror("a", broken, 100), Mirror("b", healthy, 100)], pool=tasks)
    sent = asyncio.run(_drive(m, tasks, 2))
    assert [s[0] for s in healthy.seen] == [1, 2]
    assert [msg["status"] for msg in sent if msg["type"] == "http.response.start"] == [200, 200]


def test_only_detached_mirrors_get_the_copy_job_in_their_scope() -> None:
    """A detached mirror's leaves may hand their exchange to the transport (the job in
    the scope); every copy, detached or not, is marked as a copy."""
    main, whole, detached, pool = Recorder(), Recorder(), Recorder(), MirrorPool()
    mirrors = [Mirror("whole", whole, 100), Mirror("detached", detached, 100, detached=True)]
    asyncio.run(_drive(Mirroring(main, mirrors, pool=pool), pool, 1))
    ((_, _, whole_scope),), ((_, _, detached_scope),) = whole.seen, detached.seen
    assert is_copy(whole_scope) and copy_job(whole_scope) is None
    assert is_copy(detached_scope) and copy_job(detached_scope) is not None
    assert not is_copy(main.seen[0][2])


def test_percent_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        Mirroring(Recorder(), [Mirror("m", Recorder(), 101)], pool=MirrorPool())
