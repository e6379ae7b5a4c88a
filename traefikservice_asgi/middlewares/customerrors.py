"""``errors`` (Traefik's ``pkg/middlewares/customerrors``): an answer whose status is in
``status`` is dropped as it arrives (``codeCatcher``) and replaced by the answer of the
error page service to ``GET <query>``, sent with that status (``codeModifier``), or
with the first ``statusRewrites`` entry holding it.

The page request is Traefik's ``newRequest("http://" + Host + query)``: ``query`` gets
a leading ``/`` and ``{status}`` (the status sent), ``{originalStatus}`` and ``{url}``
(the request's URL, ``url.QueryEscape``d) replaced; a URL Go cannot parse answers
``http.Error`` with the status text. It carries the request's headers (only those of
``errorRequestHeaders`` when set), no body, and no ``X-Forwarded-For`` of this hop: Go's
proxy appends the client's address from ``RemoteAddr``, which the page request lacks.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.middlewares import ErrorPage, StatusRanges
from ..entrypoint.context import forward_of, replace_forward
from ..entrypoint.forwarding import Forward
from ..responses import GO_STATUS_TEXT, send_go_error
from ._url import RequestURL, path_unescape

__all__ = ["CustomErrors", "page_target"]

_CTL = frozenset(range(0x20)) | {0x7F}


def _contains(ranges: StatusRanges, status: int) -> bool:
    return any(low <= status <= high for low, high in ranges)


def page_target(query: str, host: bytes) -> bytes | None:
    """The request target of ``GET http://<host><query>`` as Go's ``url.Parse`` and
    ``URL.RequestURI`` give it (None: Go cannot parse it)."""
    raw = ("http://" + host.decode("latin-1") + query).encode("latin-1", "replace")
    if any(c in _CTL for c in raw.partition(b"#")[0]):
        return None  # net/url: invalid control character in URL
    url, _, fragment = raw.partition(b"#")
    if path_unescape(fragment) is None:
        return None
    rest = url[len(b"http://") :]
    slash = rest.find(b"/")
    rest = rest[slash:] if slash >= 0 else b""
    path, question, rawquery = rest.partition(b"?")
    if path_unescape(path) is None:
        return None  # invalid URL escape
    return RequestURL.from_escaped(path, rawquery if question else None).request_uri()


def _original_url(forward: Forward, tls: bool) -> str:
    """``url.URL{Scheme, Host, Path, RawPath, RawQuery}.String()`` of the request."""
    url = RequestURL.of(forward.target)
    text = ("https://" if tls else "http://") + (forward.host or b"").decode("latin-1")
    text += url.escaped_path().decode("latin-1")
    if url.query:
        text += "?" + url.query.decode("latin-1")
    return text


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class CustomErrors:
    def __init__(self, app: ASGIApp, config: ErrorPage, page: ASGIApp | None = None) -> None:
        self.app = app
        self.page = page  # None: Traefik's "No backend handler", the answer untouched
        self.status = config.status
        self.rewrites = config.status_rewrites
        self.query = config.query
        self.headers = (
            None
            if config.error_request_headers is None
            else frozenset(name.lower().encode() for name in config.error_request_headers)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.page is None:
            await self.app(scope, receive, send)
            return
        caught: int | None = None

        async def catch(message: Message) -> None:
            nonlocal caught
            if message["type"] == "http.response.start":
                if _contains(self.status, message["status"]):
                    caught = message["status"]
                    return
            elif caught is not None:
                return  # the caught answer's body: dropped as it arrives
            await send(message)

        await self.app(scope, receive, catch)
        if caught is not None:
            await self._error_page(self.page, scope, caught, send)

    async def _error_page(self, page: ASGIApp, scope: Scope, original: int, send: Send) -> None:
        code = next((to for ranges, to in self.rewrites if _contains(ranges, original)), original)
        forward = forward_of(scope)
        query = ""
        if self.query:
            query = "/" + self.query.removeprefix("/")
            query = query.replace("{status}", str(code))
            query = query.replace("{originalStatus}", str(original))
            tls = scope.get("scheme") in ("https", "wss")
            query = query.replace("{url}", quote_plus(_original_url(forward, tls), safe=""))
        target = page_target(query, forward.host or b"")
        if target is None:
            await send_go_error(send, code, GO_STATUS_TEXT.get(code, ""))
            return
        path, question, rawquery = target.partition(b"?")
        if question:  # Traefik's proxy sends `;` in a query as `&`
            target = path + b"?" + rawquery.replace(b";", b"&")
        headers = self._page_headers(scope, forward)
        first = dict(reversed(headers))  # Go's Header.Get: the first value
        gzip = not first.get(b"accept-encoding") and not first.get(b"range")
        if gzip:  # Go's transport asks for gzip (and inflates it) when the client did not
            headers.append((b"accept-encoding", b"gzip"))
        page_scope = replace_forward(
            {**scope, "method": "GET"},
            method="GET",
            target=target,
            headers=headers,
            content_length=None,
            chunked=False,
            gzip_added=gzip,
        )

        async def modify(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "status": code}
            await send(message)

        await page(page_scope, _no_body, modify)

    def _page_headers(self, scope: Scope, forward: Forward) -> list[tuple[bytes, bytes]]:
        """The request's headers as Traefik's handler holds them (no ``X-Forwarded-For``
        of this hop, no ``Accept-Encoding`` the gateway added), filtered by
        ``errorRequestHeaders``."""
        headers = list(forward.headers)
        if forward.gzip_added:  # the gateway's Accept-Encoding: gzip, the last one
            last = max(i for i, (name, _) in enumerate(headers) if name == b"accept-encoding")
            del headers[last]
        client = (scope.get("client") or ("",))[0].encode()
        out: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name == b"x-forwarded-for" and client:
                if value == client:
                    continue
                value = value.removesuffix(b", " + client)
            if self.headers is None or name in self.headers:
                out.append((name, value))
        return out
