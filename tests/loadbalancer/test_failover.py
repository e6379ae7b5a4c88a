"""Failover behaves as Traefik 3.7's (ports ``failover/failover_test.go``), message for
message: a main answer in the ranges never reaches the client, the body is replayed."""

from __future__ import annotations

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.asgi import receiver, run, scope
from traefikservice_asgi.loadbalancer.failover import Failover, in_ranges


class Stub:
    """A service that reads the whole body, then answers ``status`` with ``body``."""

    def __init__(self, name: str, status: int = 200, body: bytes = b"") -> None:
        self.name = name
        self.status = status
        self.body = body
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        if scope.get("method") == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        self.bodies.append(body)
        headers = [(b"server", self.name.encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _post(app: ASGIApp, chunks: list[bytes]) -> list[Message]:
    return run(app, scope("POST", length=sum(map(len, chunks))), receiver(chunks))


def _server(sent: list[Message]) -> str:
    server: bytes = dict(sent[0]["headers"]).get(b"server", b"")
    return server.decode()


def _go_error(status: int, text: str) -> list[Message]:
    body = (text + "\n").encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


# ------------------------------------------------------------------------- health


def test_failover_serves_main_then_fallback_when_main_is_down_then_503_when_both_are() -> None:
    failover = Failover(Stub("handler"), Stub("fallback"), health_check=True)
    reports: list[bool] = []
    failover.register_status_updater(reports.append)
    assert _server(run(failover, scope())) == "handler"
    failover.set_handler_status(False)
    assert _server(run(failover, scope())) == "fallback"
    assert reports == [True]  # still up: the fallback is
    failover.set_fallback_status(False)
    assert run(failover, scope()) == _go_error(503, "Service Unavailable")
    assert reports == [True, False]


def test_failover_returns_to_main_when_it_is_up_again() -> None:
    failover = Failover(Stub("handler"), Stub("fallback"))
    failover.set_handler_status(False)
    assert _server(run(failover, scope())) == "fallback"
    failover.set_handler_status(True)
    assert _server(run(failover, scope())) == "handler"


def test_failover_reports_only_status_changes() -> None:
    failover = Failover(Stub("handler"), Stub("fallback"), health_check=True)
    reports: list[bool] = []
    failover.register_status_updater(reports.append)
    failover.set_handler_status(True)
    failover.set_fallback_status(True)
    assert reports == []


def test_nested_failover_propagates_down_to_its_parent() -> None:
    inner = Failover(Stub("handler"), Stub("fallback"), health_check=True)
    top = Failover(inner, Stub("topFailover"))
    inner.register_status_updater(top.set_handler_status)
    assert _server(run(top, scope())) == "handler"
    inner.set_handler_status(False)
    assert _server(run(top, scope())) == "fallback"
    inner.set_fallback_status(False)
    assert _server(run(top, scope())) == "topFailover"


def test_failover_refuses_a_status_updater_without_health_check() -> None:
    with pytest.raises(ValueError, match="healthCheck not enabled"):
        Failover(Stub("a"), Stub("b")).register_status_updater(lambda up: None)


# --------------------------------------------------------------------- status codes


@pytest.mark.parametrize(
    ("ranges", "main_status", "expected_server", "expected_status", "expected_body"),
    [
        ([(503, 503)], 503, "fallback", 200, b"fallback response"),
        ([(503, 503)], 200, "handler", 200, b"main response"),
        ([(503, 503)], 500, "handler", 500, b"main response"),
        ([(500, 500), (502, 502), (503, 503), (504, 504)], 503, "fallback", 200, b"fallback response"),
        ([(500, 500), (502, 502), (503, 503), (504, 504)], 502, "fallback", 200, b"fallback response"),
        ([(500, 500), (502, 502), (503, 503), (504, 504)], 404, "handler", 404, b"main response"),
        ([(500, 504)], 503, "fallback", 200, b"fallback response"),
        ([(500, 504)], 404, "handler", 404, b"main response"),
    ],
)  # fmt: skip
def test_failover_on_status_codes_follows_traefiks_table(
    ranges: list[tuple[int, int]],
    main_status: int,
    expected_server: str,
    expected_status: int,
    expected_body: bytes,
) -> None:
    failover = Failover(
        Stub("handler", main_status, b"main response"),
        Stub("fallback", 200, b"fallback response"),
        status=ranges,
    )
    assert run(failover, scope()) == [
        {
            "type": "http.response.start",
            "status": expected_status,
            "headers": [(b"server", expected_server.encode())],
        },
        {"type": "http.response.body", "body": expected_body},
    ]


def test_failover_never_sends_any_part_of_a_main_answer_in_the_ranges() -> None:
    async def main(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 502, "headers": [(b"x-main", b"1")]})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await send({"type": "http.response.body", "body": b"rest", "more_body": False})

    fallback = Stub("fallback", 201, b"ok")
    sent = run(Failover(main, fallback, status=[(500, 599)]), scope())
    assert sent == [
        {"type": "http.response.start", "status": 201, "headers": [(b"server", b"fallback")]},
        {"type": "http.response.body", "body": b"ok"},
    ]


def test_failover_streams_a_main_answer_outside_the_ranges_message_by_message() -> None:
    messages: list[Message] = [
        {"type": "http.response.start", "status": 200, "headers": [(b"x-main", b"1")]},
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]

    async def main(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    assert run(Failover(main, Stub("fallback"), status=[(500, 599)]), scope()) == messages


def test_failover_body_is_replayed_to_the_fallback_whole() -> None:
    main, fallback = Stub("handler", 503), Stub("fallback")
    sent = _post(Failover(main, fallback, status=[(503, 503)]), [b"test ", b"request ", b"body"])
    assert _server(sent) == "fallback"
    assert main.bodies == fallback.bodies == [b"test request body"]


def test_failover_body_is_read_by_the_main_when_it_answers() -> None:
    main, fallback = Stub("handler", 200), Stub("fallback")
    sent = _post(Failover(main, fallback, status=[(503, 503)]), [b"test request body"])
    assert _server(sent) == "handler"
    assert (main.bodies, fallback.bodies) == ([b"test request body"], [])


@pytest.mark.parametrize(
    ("limit", "body", "too_large"),
    [
        (100, b"small body", False),
        (16, b"exactly 16 bytes", False),
        (5, b"this body is too large", True),
        (0, b"any size body", True),
        (-1, b"any size body should work", False),
    ],
)
def test_failover_max_request_body_bytes_gives_traefiks_413(
    limit: int, body: bytes, too_large: bool
) -> None:
    main, fallback = Stub("handler", 503), Stub("fallback")
    failover = Failover(main, fallback, status=[(503, 503)], max_request_body_bytes=limit)
    sent = _post(failover, [body[:3], body[3:]])
    if too_large:
        assert sent == _go_error(413, "Request body too large")
        assert main.bodies == fallback.bodies == []
    else:
        assert (sent[0]["status"], fallback.bodies) == (200, [body])


def test_failover_stops_reading_a_body_as_soon_as_it_is_over_the_limit() -> None:
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"12345", "more_body": True}

    failover = Failover(
        Stub("handler"), Stub("fallback"), status=[(503, 503)], max_request_body_bytes=7
    )
    assert run(failover, scope("POST", length=100), receive) == _go_error(
        413, "Request body too large"
    )
    assert reads == 2


def test_failover_without_a_body_does_not_read_the_clients_receive() -> None:
    async def receive() -> Message:
        raise AssertionError("the request has no body to buffer")

    main, fallback = Stub("handler", 503), Stub("fallback")
    sent = run(
        Failover(main, fallback, status=[(503, 503)], max_request_body_bytes=0), scope(), receive
    )
    assert _server(sent) == "fallback"


def test_failover_sends_nothing_when_the_client_leaves_while_the_body_is_read() -> None:
    main, fallback = Stub("handler", 503), Stub("fallback")

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    assert (
        run(Failover(main, fallback, status=[(503, 503)]), scope("POST", length=10), receive) == []
    )
    assert main.bodies == fallback.bodies == []


def test_failover_replayed_receive_hands_over_to_the_client_after_the_body() -> None:
    seen: list[Message] = []

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([await receive(), await receive()])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    _post(Failover(Stub("handler", 503), fallback, status=[(503, 503)]), [b"abc"])
    assert seen == [
        {"type": "http.request", "body": b"abc", "more_body": False},
        {"type": "http.disconnect"},  # the client's own receive, after its body
    ]


def test_failover_with_main_down_sends_the_request_straight_to_the_fallback() -> None:
    main, fallback = Stub("handler", 503), Stub("fallback")
    failover = Failover(main, fallback, status=[(503, 503)], max_request_body_bytes=1)
    failover.set_handler_status(False)
    sent = _post(failover, [b"not buffered, so not limited"])
    assert _server(sent) == "fallback"
    assert (main.bodies, fallback.bodies) == ([], [b"not buffered, so not limited"])


def test_failover_with_main_down_and_fallback_down_answers_503_even_with_ranges() -> None:
    failover = Failover(Stub("handler"), Stub("fallback"), status=[(503, 503)])
    failover.set_handler_status(False)
    failover.set_fallback_status(False)
    assert run(failover, scope()) == _go_error(503, "Service Unavailable")


def test_failover_on_status_with_fallback_down_answers_503() -> None:
    failover = Failover(Stub("handler", 503), Stub("fallback"), status=[(503, 503)])
    failover.set_fallback_status(False)
    assert run(failover, scope()) == _go_error(503, "Service Unavailable")


# ------------------------------------------------------------------------ WebSocket


def _ws_scope() -> Scope:
    return {"type": "websocket", "path": "/", "headers": [], "client": None}


def _ws_receiver() -> Receive:
    return _receiver_of([{"type": "websocket.connect"}, {"type": "websocket.disconnect"}])


def _receiver_of(messages: list[Message]) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


def test_failover_hands_a_refused_websocket_handshake_to_the_fallback() -> None:
    async def main(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.http.response.start", "status": 502, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"Bad Gateway"})

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "headers": [(b"server", b"fallback")]})

    sent = run(Failover(main, fallback, status=[(500, 599)]), _ws_scope(), _ws_receiver())
    assert sent == [{"type": "websocket.accept", "headers": [(b"server", b"fallback")]}]


def test_failover_keeps_an_accepted_websocket_even_if_101_is_in_the_ranges() -> None:
    async def main(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": []})
        await send({"type": "websocket.send", "text": "hi"})

    sent = run(Failover(main, Stub("fallback"), status=[(100, 599)]), _ws_scope(), _ws_receiver())
    assert sent == [
        {"type": "websocket.accept", "headers": []},
        {"type": "websocket.send", "text": "hi"},
    ]


# ---------------------------------------------------------------------------- ranges


def test_in_ranges_is_inclusive_at_both_ends() -> None:
    ranges = ((500, 504), (404, 404))
    assert [s for s in (403, 404, 405, 499, 500, 504, 505) if in_ranges(ranges, s)] == [
        404,
        500,
        504,
    ]


def test_failover_refuses_an_empty_range_and_a_limit_below_minus_one() -> None:
    with pytest.raises(ValueError, match="599-500"):
        Failover(Stub("a"), Stub("b"), status=[(599, 500)])
    with pytest.raises(ValueError, match="-2"):
        Failover(Stub("a"), Stub("b"), status=[(500, 599)], max_request_body_bytes=-2)
