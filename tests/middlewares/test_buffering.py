"""buffering: the request read whole (413 past its limit, a length given), the answer
held whole (500 past its limit, Go's length for a small one), retries while the
expression holds, and only for a request with a body."""

from __future__ import annotations

from typing import Any

from tests.support.asgi import receiver, run, scope
from tests.support.config import assert_unbuilt
from traefikservice_asgi.config._oxy_predicate import parse
from traefikservice_asgi.config.middlewares import Buffering as BufferingConfig
from traefikservice_asgi.entrypoint.context import forward_of
from traefikservice_asgi.middlewares.buffering import Buffering, holds


def test_is_network_error_means_a_502_or_a_504() -> None:
    expression = parse("IsNetworkError() && Attempts() < 2")
    assert holds(expression, "GET", 1, 502) and holds(expression, "GET", 1, 504)
    assert not holds(expression, "GET", 1, 500) and not holds(expression, "GET", 2, 502)


def backend(status: int = 200, body: list[bytes] | None = None, length: bool = False) -> Any:
    """An app answering ``status`` with ``body`` in pieces; it records each request's
    Forward and body."""
    seen: list[tuple[Any, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        data = b""
        if forward_of(scope).has_body:
            while True:
                message = await receive()
                data += message.get("body", b"")
                if not message.get("more_body"):
                    break
        seen.append((forward_of(scope), data))
        pieces = body if body is not None else [b"ok"]
        headers = [(b"content-length", str(sum(map(len, pieces))).encode())] if length else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    app.seen = seen  # type: ignore[attr-defined]
    return app


CHUNKED = [(b"host", b"a.test"), (b"transfer-encoding", b"chunked")]


def statuses_and_body(sent: list[Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    start = sent[0]
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:]), start["headers"]


def test_a_chunked_body_reaches_the_service_whole_with_its_length() -> None:
    app = backend()
    request = scope("POST", CHUNKED)
    run(
        Buffering(app, BufferingConfig(mem_request_body_bytes=2)), request, receiver([b"ab", b"cd"])
    )
    ((forward, data),) = app.seen
    assert data == b"abcd" and forward.content_length == 4 and not forward.chunked


def test_a_body_growing_past_the_limit_is_answered_413_and_never_sent() -> None:
    app = backend()
    config = BufferingConfig(max_request_body_bytes=3)
    sent = run(Buffering(app, config), scope("POST", CHUNKED), receiver([b"ab", b"cd"]))
    assert statuses_and_body(sent)[:2] == (413, b"Request Entity Too Large")
    assert app.seen == []


def test_an_answer_past_its_limit_is_answered_500_and_a_small_one_gets_a_length() -> None:
    config = BufferingConfig(max_response_body_bytes=5)
    sent = run(Buffering(backend(body=[b"abc", b"def"]), config), scope())
    assert statuses_and_body(sent)[:2] == (500, b"Internal Server Error")
    status, body, headers = statuses_and_body(run(Buffering(backend(), config), scope()))
    assert (status, body) == (200, b"ok") and (b"content-length", b"2") in headers
    big = BufferingConfig()
    _, body, headers = statuses_and_body(run(Buffering(backend(body=[b"x" * 3000]), big), scope()))
    assert len(body) == 3000 and not [v for k, v in headers if k == b"content-length"]


def test_a_request_with_a_body_is_retried_while_the_expression_holds() -> None:
    app = backend(status=500)
    config = BufferingConfig(retry_expression=parse("ResponseCode() == 500 && Attempts() < 3"))
    sent = run(Buffering(app, config), scope("POST", CHUNKED), receiver([b"a=1"]))
    assert statuses_and_body(sent)[0] == 500
    assert [data for _, data in app.seen] == [b"a=1"] * 3
    app = backend(status=500)
    run(Buffering(app, config), scope("GET", [(b"host", b"a.test")]))
    assert len(app.seen) == 1  # no body: never retried


def test_no_body_is_relayed_for_a_head_or_a_zero_length() -> None:
    sent = run(Buffering(backend(body=[b"ignored"]), BufferingConfig()), scope("HEAD"))
    assert statuses_and_body(sent)[1] == b""


def test_negative_sizes_and_unparsable_expressions_warn_unused_and_refuse_the_route() -> None:
    # oxy's buffer.New, from Traefik's buffering.New: the router using it is not served.
    assert_unbuilt(
        "buffering: {memResponseBodyBytes: -5}",
        "spec.buffering.memResponseBodyBytes: mem bytes should be >= 0 got -5 (oxy)",
    )
    assert_unbuilt(
        "buffering: {retryExpression: 'Attempts()'}",
        'spec.buffering.retryExpression: invalid retry expression "Attempts()": expected '
        "predicate, got Attempts()",
    )
