"""Compile a parsed rule into one predicate over a ``RequestView``.

Everything that can be done once is done here, at compile time: names resolved, hosts
lowercased, regexes validated and compiled (RE2), IP networks parsed. The result is a tree
of small closures, so ``Rule.matches`` is a handful of attribute reads and comparisons.

Each matcher mirrors Traefik 3.7: the v3 set from ``pkg/muxer/http/matcher.go``, the v2
set from ``matcher_v2.go`` (gorilla/mux templates). Negation is applied as ``not``;
Traefik pushes ``!`` down with De Morgan's laws, which is the same thing for pure
predicates.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from traefikservice_asgi.exceptions import RuleError

from ._parser import And, Call, Node, Not, Or, StringArg
from ._re2 import GoRegexp, RegexError, compile_re2
from ._request import RequestView, mux_parse_host

__all__ = ["Predicate", "Syntax", "compile_node"]

Predicate = Callable[[RequestView], bool]
Syntax = Literal["v3", "v2"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _always(_: RequestView) -> bool:
    return True


def _never(_: RequestView) -> bool:
    return False


def go_quote(value: str) -> str:
    """A value in double quotes, like Go's ``%q``, for error messages."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _go_upper(text: str) -> str:
    """Go's ``strings.ToUpper``: simple per-rune mapping (``ß`` stays ``ß``)."""
    if text.isascii():
        return text.upper()
    return "".join(up if len(up := ch.upper()) == 1 else ch for ch in text)


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def _header_key(key: str) -> str | None:
    """The ``RequestView.headers`` key for a rule's header name.

    Go canonicalises valid names (so matching is case-insensitive) and leaves invalid
    ones untouched; its server never stores an invalid name, so such a rule never
    matches (``None``). ``Host`` is not in Go's ``req.Header`` either.
    """
    if not key or not all(c in _TOKEN_CHARS for c in key):
        return None
    return key.lower()


def _go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in text)


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class _Ctx:
    rule: str
    call: Call
    name: str  # canonical matcher name

    def error(self, message: str, position: int | None = None) -> RuleError:
        return RuleError(message, self.rule, self.call.position if position is None else position)

    def regex(self, arg: StringArg, pattern: str | None = None) -> GoRegexp:
        """Compile a Go regex from ``arg`` (or a pattern built from it)."""
        try:
            return compile_re2(arg.value if pattern is None else pattern)
        except RegexError as exc:
            position = arg.position
            if pattern is None and arg.raw:
                position = arg.position + 1 + exc.offset
            raise self.error(
                f"invalid regexp {go_quote(arg.value)} for matcher {self.name}: {exc.message}",
                position,
            ) from None

    def ascii_only(self, arg: StringArg) -> None:
        if not arg.value.isascii():
            bad = next(i for i, c in enumerate(arg.value) if not c.isascii())
            raise self.error(
                f"invalid value {go_quote(arg.value)} for {self.name} matcher, "
                "non-ASCII characters are not allowed",
                arg.position + 1 + bad if arg.raw else arg.position,
            )


# --------------------------------------------------------------------------- shared


def _ip_checker(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    """Traefik's ``ip.Checker``: exact IPs and CIDR networks, IPv4-in-IPv6 unwrapped."""
    addresses: set[IPAddress] = set()
    nets4: list[ipaddress.IPv4Network] = []
    nets6: list[ipaddress.IPv6Network] = []
    for arg in args:
        parsed = _parse_ip_or_cidr(arg.value)
        if parsed is None:
            raise ctx.error(
                f"invalid IP or CIDR {go_quote(arg.value)} for matcher {ctx.name}", arg.position
            )
        if isinstance(parsed, ipaddress.IPv4Network):
            nets4.append(parsed)
        elif isinstance(parsed, ipaddress.IPv6Network):
            nets6.append(parsed)
        else:
            addresses.add(parsed)

    def client_ip(view: RequestView) -> bool:
        ip = view.client_ip
        if ip is None:
            return False
        if ip in addresses:
            return True
        nets = nets4 if ip.version == 4 else nets6
        return any(ip in net for net in nets)

    return client_ip


def _parse_go_addr(text: str) -> IPAddress | None:
    """Go's ``netip.ParseAddr`` without zones; IPv4-mapped IPv6 unwrapped like ``To4``."""
    if not text or not text.isascii() or "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _parse_ip_or_cidr(
    value: str,
) -> IPAddress | ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """``net.ParseIP`` then ``net.ParseCIDR``, with ``IPNet.Contains`` semantics baked in.

    A CIDR written on an IPv4-mapped IPv6 address (``::ffff:10.0.0.0/104``) contains
    IPv4 addresses in Go; it becomes the equivalent IPv4 network here.
    """
    ip = _parse_go_addr(value)
    if ip is not None:
        return ip
    addr_text, slash, mask = value.partition("/")
    if not slash or not mask or not mask.isascii() or not mask.isdigit():
        return None
    if not addr_text or not addr_text.isascii() or "%" in addr_text:
        return None
    try:
        addr = ipaddress.ip_address(addr_text)
    except ValueError:
        return None
    bits = 32 if addr.version == 4 else 128
    prefix = int(mask)
    if prefix > bits:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return ipaddress.IPv4Network((addr, prefix), strict=False)
    net6 = ipaddress.IPv6Network((addr, prefix), strict=False)
    mapped = net6.network_address.ipv4_mapped
    if mapped is not None and prefix >= 96:
        return ipaddress.IPv4Network((mapped, prefix - 96), strict=False)
    return net6


def _equal_fold_ascii(domain: str, expr: str) -> bool:
    """Go's ``strings.EqualFold`` of a lowercased host against a lowercase ASCII rule.

    Only two non-ASCII runes fold onto ASCII lowercase letters: U+017F (long s) and
    U+212A (Kelvin sign).
    """
    if domain == expr:
        return True
    if domain.isascii():
        return False
    return domain.replace("\u017f", "s").replace("\u212a", "k") == expr


def _domain_match(domain: str, expr: str) -> bool:
    """Traefik's ``muxer.DomainMatchHostExpression`` (``*.`` replaces the first label)."""
    if expr.startswith("*"):
        labels = domain.split(".")
        labels[0] = "*"
        return _equal_fold_ascii(".".join(labels), expr)
    return _equal_fold_ascii(domain, expr)


# --------------------------------------------------------------------------- v3


def _v3_host(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    arg = args[0]
    if arg.value == "*":
        return _always  # like the TCP side: matches every host, even none
    ctx.ascii_only(arg)
    expr = arg.value.lower()
    expr_no_dot = expr[:-1] if expr.endswith(".") else None

    def host(view: RequestView) -> bool:
        req = view.host
        if req == expr:  # (the usual match, without the calls below)
            return bool(req)
        if not req:
            return False
        if _domain_match(req, expr):
            return True
        if expr_no_dot is not None and _domain_match(req, expr_no_dot):
            return True
        return req.endswith(".") and _domain_match(req[:-1], expr)

    return host


def _v3_host_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    """Unanchored search on the canonical host.

    Traefik also tries the CNAME-flattened host, which is ``""`` when flattening is off
    (the default), so a regex that matches the empty string matches every request.
    """
    ctx.ascii_only(args[0])
    rx = ctx.regex(args[0])
    if rx.search(""):
        return _always
    search = rx.search
    return lambda view: search(view.host)


def _check_path(ctx: _Ctx, arg: StringArg) -> str:
    if not arg.value.startswith("/"):
        raise ctx.error(f"path {go_quote(arg.value)} does not start with a '/'", arg.position)
    return arg.value


def _v3_path(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    expected = _check_path(ctx, args[0])
    return lambda view: view.path == expected


def _v3_path_prefix(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    prefix = _check_path(ctx, args[0])

    def path_prefix(view: RequestView) -> bool:
        path = view.path
        return path is not None and path.startswith(prefix)

    return path_prefix


def _v3_path_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    search = ctx.regex(args[0]).search

    def path_regexp(view: RequestView) -> bool:
        path = view.path
        return path is not None and search(path)

    return path_regexp


def _v3_method(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    method = _go_upper(args[0].value)
    return lambda view: view.method == method


def _v3_header(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    key, value = _header_key(args[0].value), args[1].value
    if key is None:
        return _never
    return lambda view: value in view.headers.get(key, ())


def _v3_header_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    key = _header_key(args[0].value)
    search = ctx.regex(args[1]).search
    if key is None:
        return _never
    return lambda view: any(search(v) for v in view.headers.get(key, ()))


def _v3_query(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    key = args[0].value
    value = args[1].value if len(args) == 2 else ""
    return lambda view: value in view.query.get(key, ())


def _v3_query_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    if len(args) == 1:
        return _v3_query(ctx, args)
    key = args[0].value
    search = ctx.regex(args[1]).search
    return lambda view: any(search(v) for v in view.query.get(key, ()))


def _v3_client_ip(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    return _ip_checker(ctx, args)


# --------------------------------------------------------------------------- v2


def _v2_host(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    hosts: set[str] = set()
    accepted: set[str] = set()
    for arg in args:
        ctx.ascii_only(arg)
        host = arg.value.lower()
        hosts.add(host)
        accepted.add(host)
        if host.endswith("."):
            accepted.add(host[:-1])

    def host_v2(view: RequestView) -> bool:
        req = view.host
        if not req:
            return False
        return req in accepted or (req.endswith(".") and req[:-1] in hosts)

    return host_v2


def _mux_template(
    ctx: _Ctx, arg: StringArg, kind: Literal["host", "path", "prefix", "query"]
) -> tuple[GoRegexp, list[str]]:
    """gorilla/mux ``newRouteRegexp``: ``{name}`` / ``{name:re}`` templates to a regex."""
    tpl = arg.value
    idxs: list[int] = []
    level = idx = 0
    for i, c in enumerate(tpl):
        if c == "{":
            level += 1
            if level == 1:
                idx = i
        elif c == "}":
            level -= 1
            if level == 0:
                idxs += [idx, i + 1]
            elif level < 0:
                raise ctx.error(f"mux: unbalanced braces in {go_quote(tpl)}", arg.position)
    if level != 0:
        raise ctx.error(f"mux: unbalanced braces in {go_quote(tpl)}", arg.position)
    default = {"host": "[^.]+", "query": ".*"}.get(kind, "[^/]+")
    pattern = "(?i)^" if kind == "host" else "^"
    names: list[str] = []
    end = 0
    for k in range(0, len(idxs), 2):
        raw = tpl[end : idxs[k]]
        end = idxs[k + 1]
        name, colon, patt = tpl[idxs[k] + 1 : end - 1].partition(":")
        if not colon:
            patt = default
        if not name or not patt:
            raise ctx.error(
                f"mux: missing name or pattern in {go_quote(tpl[idxs[k] : end])}", arg.position
            )
        pattern += f"{_go_quote_meta(raw)}(?P<v{k // 2}>{patt})"
        names.append(name)
        ctx.regex(arg, f"^{patt}$")  # mux also compiles each variable on its own
    pattern += _go_quote_meta(tpl[end:])
    if kind == "query" and tpl.partition("=")[2] == "":
        pattern += default
    if kind != "prefix":
        pattern += "$"
    return ctx.regex(arg, pattern), names


def _v2_host_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    """gorilla/mux ``Host`` templates, case-insensitive, on ``req.Host`` minus the port."""
    searches = []
    for arg in args:
        ctx.ascii_only(arg)
        searches.append(_mux_template(ctx, arg, "host")[0].search)

    def host_regexp_v2(view: RequestView) -> bool:
        host = mux_parse_host(view.host_header)
        return any(search(host) for search in searches)

    return host_regexp_v2


def _v2_paths(ctx: _Ctx, args: Sequence[StringArg], prefix: bool) -> Predicate:
    searches = []
    for arg in args:
        if not arg.value.startswith("/"):
            raise ctx.error(
                f"mux: path must start with a slash, got {go_quote(arg.value)}", arg.position
            )
        searches.append(_mux_template(ctx, arg, "prefix" if prefix else "path")[0].search)

    def path_v2(view: RequestView) -> bool:
        path = view.path
        return path is not None and any(search(path) for search in searches)

    return path_v2


def _v2_path(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    return _v2_paths(ctx, args, prefix=False)


def _v2_path_prefix(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    return _v2_paths(ctx, args, prefix=True)


def _v2_method(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    methods = frozenset(_go_upper(arg.value) for arg in args)
    return lambda view: view.method in methods


def _pairs(ctx: _Ctx, args: Sequence[StringArg]) -> list[tuple[StringArg, StringArg]]:
    if len(args) % 2:
        raise ctx.error(
            f"mux: number of parameters must be multiple of 2, got {len(args)}",
            ctx.call.end,
        )
    by_key: dict[str, tuple[StringArg, StringArg]] = {}
    for i in range(0, len(args), 2):
        by_key[args[i].value] = (args[i], args[i + 1])  # a Go map: the last one wins
    return list(by_key.values())


def _v2_headers(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    checks = [(_header_key(k.value), v.value) for k, v in _pairs(ctx, args)]

    def headers_v2(view: RequestView) -> bool:
        headers = view.headers
        return all(key is not None and value in headers.get(key, ()) for key, value in checks)

    return headers_v2


def _v2_headers_regexp(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    checks = [(_header_key(k.value), ctx.regex(v).search) for k, v in _pairs(ctx, args)]

    def headers_regexp_v2(view: RequestView) -> bool:
        headers = view.headers
        for key, search in checks:
            if key is None or key not in headers:
                return False
            if not any(search(value) for value in headers[key]):
                return False
        return True

    return headers_regexp_v2


def _v2_query(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    """gorilla/mux ``Queries``: ``key=value`` templates matched on ``key=<first value>``."""
    flat: list[StringArg] = []
    for arg in args:
        key, eq, value = arg.value.partition("=")
        flat.append(StringArg(key, arg.position, False))
        if eq:
            flat.append(StringArg(value, arg.position, False))
    if len(flat) % 2:
        raise ctx.error(
            f"mux: number of parameters must be multiple of 2, got {len(flat)}", ctx.call.end
        )
    checks: list[tuple[str, Callable[[str], bool]]] = []
    seen: set[str] = set()
    for i in range(0, len(flat), 2):
        template = StringArg(f"{flat[i].value}={flat[i + 1].value}", flat[i].position, False)
        rx, names = _mux_template(ctx, template, "query")
        for name in names:
            if name in seen:
                raise ctx.error(f"mux: duplicated route variable {name}", template.position)
        seen.update(names)
        checks.append((template.value.partition("=")[0], rx.search))

    def query_v2(view: RequestView) -> bool:
        query = view.query
        for key, search in checks:
            values = query.get(key)
            subject = f"{key}={values[0]}" if values else ""
            if not search(subject):
                return False
        return True

    return query_v2


def _v2_client_ip(ctx: _Ctx, args: Sequence[StringArg]) -> Predicate:
    return _ip_checker(ctx, args)


# --------------------------------------------------------------------------- tables

_Builder = Callable[[_Ctx, Sequence[StringArg]], Predicate]

#: name -> (builder, allowed argument counts; None means "one or more").
_V3: dict[str, tuple[_Builder, tuple[int, ...] | None]] = {
    "ClientIP": (_v3_client_ip, (1,)),
    "Method": (_v3_method, (1,)),
    "Host": (_v3_host, (1,)),
    "HostRegexp": (_v3_host_regexp, (1,)),
    "Path": (_v3_path, (1,)),
    "PathRegexp": (_v3_path_regexp, (1,)),
    "PathPrefix": (_v3_path_prefix, (1,)),
    "Header": (_v3_header, (2,)),
    "HeaderRegexp": (_v3_header_regexp, (2,)),
    "Query": (_v3_query, (1, 2)),
    "QueryRegexp": (_v3_query_regexp, (1, 2)),
}
_V2: dict[str, tuple[_Builder, tuple[int, ...] | None]] = {
    "Host": (_v2_host, None),
    "HostHeader": (_v2_host, None),
    "HostRegexp": (_v2_host_regexp, None),
    "ClientIP": (_v2_client_ip, None),
    "Path": (_v2_path, None),
    "PathPrefix": (_v2_path_prefix, None),
    "Method": (_v2_method, None),
    "Headers": (_v2_headers, None),
    "HeadersRegexp": (_v2_headers_regexp, None),
    "Query": (_v2_query, None),
}


def _spellings(table: dict[str, tuple[_Builder, tuple[int, ...] | None]]) -> dict[str, str]:
    """Traefik's ``rules.NewParser``: as written, lower, UPPER and Title case."""
    names: dict[str, str] = {}
    for name in table:
        for spelling in (name, name.lower(), name.upper(), name.lower().capitalize()):
            names[spelling] = name
    return names


_TABLES = {"v3": (_V3, _spellings(_V3)), "v2": (_V2, _spellings(_V2))}


def _build_call(rule: str, call: Call, syntax: Syntax) -> Predicate:
    table, spellings = _TABLES[syntax]
    name = spellings.get(call.name)
    if name is None:
        hint = difflib.get_close_matches(call.name, list(table), n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        raise RuleError(
            f"unknown matcher {go_quote(call.name)} for rule syntax {syntax}{suggestion}",
            rule,
            call.position,
        )
    ctx = _Ctx(rule, call, name)
    builder, counts = table[name]
    if not call.args:
        raise ctx.error(f"no arguments for matcher {name}", call.end)
    for arg in call.args:
        if not arg.value:
            raise ctx.error(f"empty argument for matcher {name}", arg.position)
    if counts is not None and len(call.args) not in counts:
        expected = " or ".join(str(c) for c in counts)
        position = call.args[max(counts)].position if len(call.args) > max(counts) else call.end
        raise ctx.error(
            f"unexpected number of arguments for matcher {name}: got {len(call.args)}, "
            f"expected {expected}",
            position,
        )
    return builder(ctx, call.args)


def compile_node(rule: str, node: Node, syntax: Syntax) -> Predicate:
    """Turn an AST into a predicate; raises ``RuleError`` for any invalid matcher."""
    if isinstance(node, Call):
        return _build_call(rule, node, syntax)
    if isinstance(node, Not):
        inner = compile_node(rule, node.operand, syntax)
        return lambda view: not inner(view)
    parts = tuple(compile_node(rule, operand, syntax) for operand in node.operands)
    if isinstance(node, And):
        if len(parts) == 2:
            first, second = parts
            return lambda view: first(view) and second(view)
        return lambda view: all(part(view) for part in parts)
    assert isinstance(node, Or)  # exhaustive over Node; not input validation
    if len(parts) == 2:
        first, second = parts
        return lambda view: first(view) or second(view)
    return lambda view: any(part(view) for part in parts)


def host_key(host: str) -> str:
    """A host as the route index files it: lower case, without trailing dots. Two hosts
    a ``Host`` matcher takes for the same (case, one trailing dot) have the same key."""
    return host.rstrip(".").lower()


def required_hosts(node: Node, syntax: Syntax) -> frozenset[str] | None:
    """The hosts (each its :func:`host_key`) one of which a request must have for the
    rule to match, or None when the rule does not require one (no ``Host``, a wildcard,
    a regexp, a ``!``, an ``||`` with another matcher). A necessary condition only: the
    rule still decides; this lets the router skip routes of other hosts unasked."""
    if isinstance(node, Call):
        if _TABLES[syntax][1].get(node.name) != "Host":
            return None
        if any("*" in arg.value for arg in node.args):
            return None
        return frozenset(host_key(arg.value) for arg in node.args)
    if isinstance(node, Not):
        return None
    found = [required_hosts(operand, syntax) for operand in node.operands]
    if isinstance(node, And):
        required = [hosts for hosts in found if hosts is not None]
        return frozenset.intersection(*required) if required else None
    if any(hosts is None for hosts in found):
        return None
    return frozenset().union(*found)  # type: ignore[arg-type]
