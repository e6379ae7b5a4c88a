"""The few responses the gateway itself writes, byte for byte as Traefik writes them.

Go's ``http.Error`` (used for ``no available server`` and the router's 404) adds a
newline, ``Content-Type: text/plain; charset=utf-8`` and ``X-Content-Type-Options:
nosniff``; Traefik's proxy error handler writes only the status text, with no newline and
no Content-Type (``Bad Gateway``). Both are sent as raw ASGI messages: a response class
would cost more than the two messages it produces.
"""

from __future__ import annotations

from starlette.types import Send

from .entrypoint.context import NO_BACKEND_ANSWER, REQUEST_NOT_SENT

__all__ = [
    "GO_STATUS_TEXT",
    "STATUS_TEXT",
    "reason_phrase",
    "send_bad_request",
    "send_go_error",
    "send_options_star",
    "send_proxy_error",
    "status_line",
]

STATUS_TEXT = {
    413: "Request Entity Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


GO_STATUS_TEXT: dict[int, str] = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    103: "Early Hints",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
}
"""Go's ``http.StatusText`` (the Go release Traefik 3.7.15 is built with): the reason
phrase net/http writes whatever the backend's was (its own, not Python's RFC 9110
names: ``413 Request Entity Too Large``, ``422 Unprocessable Entity``)."""


def reason_phrase(status: int) -> str:
    """The reason phrase of Traefik's status line: Go's ``StatusText``, or
    ``status code N`` for a code it does not name (``299``), as net/http writes it."""
    return GO_STATUS_TEXT.get(status) or f"status code {status}"


def status_line(status: int) -> bytes:
    """Traefik's whole HTTP/1.1 status line, CRLF included (``HTTP/1.1 299 status code
    299\r\n``): what an ASGI server's protocol should write in place of its own (uvicorn's
    ``httptools_impl.STATUS_LINE`` / ``h11_impl.STATUS_PHRASES`` name only Python's
    ``HTTPStatus`` codes and write an empty phrase for the others)."""
    return f"HTTP/1.1 {status:03d} {reason_phrase(status)}\r\n".encode("ascii")


async def send_go_error(send: Send, status: int, text: str) -> None:
    """What Go's ``http.Error(w, text, status)`` sends."""
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_proxy_error(send: Send, status: int, *, not_sent: bool = False) -> None:
    """What Traefik's reverse proxy sends when forwarding fails: the bare status text.
    ``not_sent``: no byte of the request reached the server (a retry may try again)."""
    body = STATUS_TEXT[status].encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-length", str(len(body)).encode())],
        NO_BACKEND_ANSWER: True,  # the backend never answered
    }
    if not_sent:
        start[REQUEST_NOT_SENT] = True
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def send_bad_request(send: Send, text: str) -> None:
    """What Go's HTTP server writes for a request it refuses before any handler runs
    (``400 Bad Request: malformed Host header``): the text, no newline, and the connection
    closed. Go puts the text in the status line too, and sends no ``Content-Length``;
    under ASGI the reason phrase is the server's and the length is given."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"connection", b"close"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_options_star(send: Send) -> None:
    """Go's ``globalOptionsHandler``: ``OPTIONS *`` answered by the server itself, 200
    with ``Content-Length: 0``."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})
