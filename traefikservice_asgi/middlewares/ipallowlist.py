"""``ipAllowList`` and the deprecated ``ipWhiteList`` (Traefik's ``ipallowlist`` and
``ipwhitelist`` packages): a request passes when its IP, read by the ``ipStrategy``
(the peer's address by default), is one of ``sourceRange``'s IPs or in one of its CIDRs.
Any other (an empty IP included: no ``X-Forwarded-For`` entry at ``depth``) is answered
with ``rejectStatusCode`` (403 by default; always 403 for ``ipWhiteList``) and Go's
status text as its body (``Forbidden``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.middlewares import IPAllowList as IPAllowListConfig
from ..config.middlewares import IPWhiteList as IPWhiteListConfig
from ..responses import GO_STATUS_TEXT
from ._answer import send_text
from ._source import IPChecker, ip_getter

__all__ = ["IPAllowList", "IPWhiteList"]

MAX_VERDICTS = 4096


class IPAllowList:
    def __init__(self, app: ASGIApp, config: IPAllowListConfig | IPWhiteListConfig) -> None:
        self.app = app
        self.checker = IPChecker(config.source_range)
        self.client_ip = ip_getter(config.ip_strategy)
        status = config.reject_status_code if isinstance(config, IPAllowListConfig) else 403
        self.status = status
        self.body = GO_STATUS_TEXT.get(status, "").encode()
        # The verdict by IP text: parsing an address costs more than the rest of the
        # request here; bounded, emptied when full.
        self.verdicts: dict[str, bool] = {}

    def allows(self, ip: str) -> bool:
        verdict = self.verdicts.get(ip)
        if verdict is None:
            if len(self.verdicts) >= MAX_VERDICTS:
                self.verdicts.clear()
            verdict = self.verdicts[ip] = self.checker.is_authorized(ip)
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(self.client_ip(scope)):
            await self.app(scope, receive, send)
            return
        await send_text(send, self.status, self.body)


class IPWhiteList(IPAllowList):
    """The deprecated name: the same check, always answering 403 ``Forbidden``."""
