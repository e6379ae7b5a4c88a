"""errors: which answers are replaced, the page request Traefik builds (target, headers,
no body), the status sent, and the load errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.asgi import run as run_app
from tests.support.asgi import scope
from tests.support.config import assert_unbuilt, middleware_errors
from traefikservice_asgi.config.middlewares import ErrorPage
from traefikservice_asgi.config.models import ServiceRef
from traefikservice_asgi.entrypoint.context import forward_of
from traefikservice_asgi.middlewares.customerrors import CustomErrors, page_target

REF: Any = ServiceRef("pages", "Service", "default", None, 80)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("", b"/"),
        ("/404.html", b"/404.html"),
        ("/a b/?u=x y", b"/a%20b/?u=x y"),  # the path escaped, the query as written
        ("/e#frag", b"/e"),
        ("/e?", b"/e?"),
        ("/%zz", None),  # invalid URL escape
        ("/a\x7f", None),  # a control character
    ],
)
def test_the_page_target_is_gos_request_uri_of_the_parsed_url(
    query: str, target: bytes | None
) -> None:
    assert page_target(query, b"shop.test") == target


def run(
    config: ErrorPage, status: int, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[list[Any], list[Any]]:
    """What the client gets for an answer of ``status`` (body ``main``), and the scopes
    the page service was called with."""
    pages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"x-main", b"1")]}
        )
        await send({"type": "http.response.body", "body": b"main", "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})

    async def page(scope: Any, receive: Any, send: Any) -> None:
        pages.append((scope, await receive()))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-page", b"1")]})
        await send({"type": "http.response.body", "body": b"page"})

    request = scope(
        "POST", [(b"host", b"shop.test"), *(headers or [])], path="/a b", raw_path=b"/a%20b",
        query_string=b"q=1", client=("127.0.0.9", 5000),
    )  # fmt: skip
    sent = run_app(CustomErrors(app, config, page), request)
    return sent, pages


def test_a_caught_answer_is_dropped_and_the_page_is_sent_with_its_status() -> None:
    sent, pages = run(ErrorPage(((500, 599),), REF, "/{status}?o={originalStatus}&u={url}"), 503)
    assert [m.get("status") or m.get("body") for m in sent] == [503, b"page"]
    assert sent[0]["headers"] == [(b"x-page", b"1")]
    (scope, request), = pages  # fmt: skip
    forward = forward_of(scope)
    assert forward.method == "GET" and request["body"] == b"" and not forward.has_body
    assert forward.target == b"/503?o=503&u=http%3A%2F%2Fshop.test%2Fa%2520b%3Fq%3D1"
    assert forward.host == b"shop.test"


def test_another_status_passes_untouched_and_no_page_is_asked() -> None:
    sent, pages = run(ErrorPage(((500, 599),), REF), 404)
    assert [m.get("status") or m.get("body") for m in sent] == [404, b"main", b"!"]
    assert pages == []


def test_the_first_status_rewrite_holding_the_status_decides_it() -> None:
    rewrites = ((((400, 404),), 410), (((404, 404),), 200))
    sent, pages = run(ErrorPage(((404, 404),), REF, "{status}-{originalStatus}", rewrites), 404)
    assert sent[0]["status"] == 410
    assert forward_of(pages[0][0]).target == b"/410-404"


def test_the_page_request_has_no_x_forwarded_for_of_this_hop_and_asks_for_gzip() -> None:
    _, pages = run(ErrorPage(((500, 500),), REF), 500, [(b"x-env", b"a")])
    headers = forward_of(pages[0][0]).headers
    assert (b"x-env", b"a") in headers
    assert not [v for k, v in headers if k == b"x-forwarded-for"]
    assert headers[-1] == (b"accept-encoding", b"gzip") and forward_of(pages[0][0]).gzip_added


def test_error_request_headers_keep_only_those_named_and_an_empty_list_none() -> None:
    request = [(b"x-env", b"a"), (b"x-other", b"b"), (b"accept-encoding", b"br")]
    config = ErrorPage(((500, 500),), REF, error_request_headers=("X-Env",))
    _, pages = run(config, 500, request)
    assert forward_of(pages[0][0]).headers == [(b"x-env", b"a"), (b"accept-encoding", b"gzip")]
    _, pages = run(ErrorPage(((500, 500),), REF, error_request_headers=()), 500, request)
    assert forward_of(pages[0][0]).headers == [(b"accept-encoding", b"gzip")]


def test_a_query_go_cannot_parse_answers_the_status_text() -> None:
    sent, pages = run(ErrorPage(((500, 500),), REF, "/%zz"), 500)
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error\n"
    assert pages == []


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("{status: ['500'], service: {name: p, port: 80}, query: 5}", "spec.errors.query",
         "must be a string"),
        ("{status: ['500']}", "spec.errors.service", "required field is missing"),
        ("{status: ['5000'], service: {name: p, port: 80}}", "spec.errors.status[0]",
         'must be a status or a range like "500-599"'),
        ("{status: ['500'], statusRewrites: {'500': 1000}, service: {name: p, port: 80}}",
         "spec.errors.statusRewrites.500", "must be a status code from 100 to 999"),
        ("{status: ['500'], service: {name: p}}", "spec.errors.service.port",
         "required field is missing"),
        ("{status: ['500'], service: {name: p, port: 80}, page: x}", "spec.errors.page",
         "unknown field"),
    ],
)  # fmt: skip
def test_an_errors_middleware_refused_at_load_used_or_not_is_an_error_at_its_field(
    spec: str, field: str, message: str
) -> None:
    issues = middleware_errors(f"errors: {spec}")
    assert any(f"{field}: " in issue and message in issue for issue in issues), issues


def test_a_status_go_cannot_convert_warns_unused_and_refuses_the_route_using_it() -> None:
    # The CRD's pattern takes "500-"; customerrors.New's NewHTTPCodeRanges does not.
    assert_unbuilt(
        "errors: {status: ['500-'], service: {name: p, port: 80}}",
        'spec.errors.status[0]: strconv.Atoi: parsing "": invalid syntax',
    )
