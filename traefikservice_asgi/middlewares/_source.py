"""Where a request comes from, as Traefik's ``GetSourceExtractor`` and ``pkg/ip`` read it:
the ``sourceCriterion`` of ``rateLimit`` and ``inFlightReq``, the ``ipStrategy`` of
``ipAllowList``.

An ``ipStrategy`` reads the peer's address (``RemoteAddrStrategy``), the ``depth``-th
``X-Forwarded-For`` entry from the right (``DepthStrategy``) or the rightmost entry not in
``excludedIPs`` (``PoolStrategy``). ``X-Forwarded-For`` is the header as Traefik's
middlewares see it: the client's own, kept only when the entry point trusts it
(``forwardedHeaders``), the first of them (Go's ``Header.Get``), without the peer's
address the proxy appends later. ``requestHeaderName`` is that header's first value,
``requestHost`` the ``Host``; a missing one is the empty source, shared by all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from starlette.types import Scope

from ..config.middlewares import IPStrategy, SourceCriterion
from ..entrypoint.context import forward_of

__all__ = ["IPChecker", "ip_getter", "peer_address", "source_getter"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
XFF = b"x-forwarded-for"


def parse_ip(text: str) -> IPAddress | None:
    """Go's ``net.ParseIP``: an IPv4-mapped IPv6 address is its IPv4 address."""
    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class IPChecker:
    """Traefik's ``ip.Checker``: IPs and CIDRs (checked by the config reader)."""

    def __init__(self, ranges: tuple[str, ...]) -> None:
        self.ips: set[IPAddress] = set()
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for text in ranges:
            if "/" in text:
                net = ipaddress.ip_network(text, strict=False)
                mapped = _mapped_net(net)
                self.nets.append(mapped or net)
            else:
                ip = parse_ip(text)
                if ip is not None:
                    self.ips.add(ip)

    def contains(self, text: str) -> bool:
        """``Contains``: false for an address Go does not parse."""
        ip = parse_ip(text)
        if ip is None:
            return False
        return ip in self.ips or any(ip.version == n.version and ip in n for n in self.nets)

    def is_authorized(self, addr: str) -> bool:
        """``IsAuthorized``: ``addr``'s host when it is ``host:port`` (Go's
        ``SplitHostPort``), an IPv6 zone ignored (``netip.ParseAddr``); never ``""``."""
        host = addr
        if addr.startswith("["):
            end = addr.find("]")
            if end > 0 and addr[end + 1 : end + 2] == ":" and ":" not in addr[end + 2 :]:
                host = addr[1:end]
        elif addr.count(":") == 1:
            host = addr.partition(":")[0]
        if ":" in host and "%" in host:
            host = host.partition("%")[0]
        return self.contains(host)


def _mapped_net(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | None:
    # Go keeps ::ffff:a.b.c.d/n (n >= 96) as the IPv4 network a.b.c.d/(n-96).
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, net.prefixlen - 96), strict=False)
    return None


def peer_address(scope: Scope) -> str:
    """The peer's address (Traefik's ``RemoteAddrStrategy``, no IPv6 subnet)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def forwarded_for(scope: Scope) -> str:
    """The ``X-Forwarded-For`` Traefik's middlewares see (see the module's docstring)."""
    sent = [v for k, v in forward_of(scope).headers if k == XFF]
    if not sent or sent[0].decode("latin-1") == peer_address(scope).partition("%")[0]:
        return ""  # the entry point dropped the client's own (untrusted)
    for key, value in scope["headers"]:
        if key.lower() == XFF:
            return str(value.decode("latin-1"))
    return ""


def _subnet(text: str, bits: int | None) -> str:
    """Traefik's ``getIPv6SubnetIP``: an IPv6 address masked to ``bits``."""
    if bits is None:
        return text
    ip = parse_ip(text)
    if not isinstance(ip, ipaddress.IPv6Address):
        return text
    return str(ipaddress.IPv6Network((ip, bits), strict=False).network_address)


def ip_getter(strategy: IPStrategy | None) -> Callable[[Scope], str]:
    """``IPStrategy.Get()``'s ``GetIP``, for an ASGI scope."""
    if strategy is not None and strategy.depth > 0:
        depth, bits = strategy.depth, strategy.ipv6_subnet

        def by_depth(scope: Scope) -> str:
            entries = forwarded_for(scope).split(",")
            if len(entries) < depth:
                return ""
            return _subnet(entries[len(entries) - depth].strip(" \t"), bits)

        return by_depth
    if strategy is not None and strategy.excluded_ips:
        checker = IPChecker(strategy.excluded_ips)

        def by_pool(scope: Scope) -> str:
            for entry in reversed(forwarded_for(scope).split(",")):
                entry = entry.strip(" \t")
                if entry and not checker.contains(entry):
                    return entry
            return ""

        return by_pool
    bits = strategy.ipv6_subnet if strategy is not None else None
    if bits is None:
        return peer_address

    def by_peer(scope: Scope) -> str:
        return _subnet(peer_address(scope), bits)

    return by_peer


def source_getter(criterion: SourceCriterion) -> Callable[[Scope], str]:
    """The source of a request under ``criterion`` (Traefik's ``GetSourceExtractor``)."""
    if criterion.request_header_name:
        name = criterion.request_header_name.lower().encode("latin-1")

        def by_header(scope: Scope) -> str:
            for key, value in forward_of(scope).headers:
                if key == name:
                    return value.decode("latin-1")
            return ""

        return by_header
    if criterion.request_host:

        def by_host(scope: Scope) -> str:
            host = forward_of(scope).host
            return host.decode("latin-1") if host else ""

        return by_host
    return ip_getter(criterion.ip_strategy)
