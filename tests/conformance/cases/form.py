"""The data-driven scenario form: load and validate one ``cases/<name>/`` directory.

A case is ``routes.yaml`` (the CRD manifests, exactly as a user gives them to Traefik,
opening with a comment that says what they show) and ``script.yaml`` (backends, requests,
actions between requests and how to compare each group of requests); see ``README.md``
beside this module. Loading turns ``script.yaml`` into runner objects (``Request``,
``BackendSpec``, actions) plus the comparisons and expectations to check, and nothing runs.

Validation is strict on purpose: a scenario written by someone else must fail loudly on a
typo (an unknown key, a wrong type, a reference to an undefined request or backend) rather
than pass vacuously. Every problem of a file is reported at once, each with the file and
the key path (``script.yaml: steps[2].requests[0].hots: unknown key``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tests.conformance.runner import INDEX_HEADER, Action, BackendSpec, DigestAnswer, Request
from tests.support.backends import RecordingBackend

__all__ = [
    "COMPARE_MODES",
    "UNSET",
    "Case",
    "Difference",
    "Expect",
    "Group",
    "ScriptError",
    "SetBackend",
    "Sleep",
    "WaitForProbes",
    "case_directories",
    "load_case",
]

COMPARE_MODES = ("exact", "counts", "served-by-any")
Compare = Literal["exact", "counts", "served-by-any"]

_BACKEND_KEY = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[-a-z0-9]+$"
)
_WAIT_CAP = 30.0
"""No wait of a script may exceed this (seconds): a case stays a few seconds long."""


class ScriptError(ValueError):
    """A case directory or its ``script.yaml`` is invalid; the message lists every problem."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""An expectation left out (as opposed to ``backend: null``, which expects no backend)."""


# -- actions between requests ---------------------------------------------------------------


@dataclass(frozen=True)
class SetBackend:
    """Change how a recording backend answers from now on (every path, its health
    endpoint included: the backend answers every request alike)."""

    backend: str
    status: int | None = None
    body: bytes | None = None
    delay: float | None = None

    def __call__(self, backends: Mapping[str, RecordingBackend]) -> None:
        target = backends[self.backend]
        if self.status is not None:
            target.status = self.status
        if self.body is not None:
            target.body = self.body
        if self.delay is not None:
            target.delay = self.delay


@dataclass(frozen=True)
class WaitForProbes:
    """Wait until ``backend`` received ``count`` health probes (requests that are not in
    the script) after this step began; fail after ``timeout`` seconds.

    Two probes by default: a server is probed one probe at a time, so the second one
    proves the verdict on the first (sent with the backend's new answer) was applied.
    """

    backend: str
    count: int = 2
    timeout: float = 5.0

    def __call__(self, backends: Mapping[str, RecordingBackend]) -> None:
        target = backends[self.backend]
        start = _probes(target)
        deadline = time.monotonic() + self.timeout
        while _probes(target) < start + self.count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"backend {self.backend!r} received {_probes(target) - start} health "
                    f"probe(s) in {self.timeout}s, the script waits for {self.count}: "
                    "is a healthCheck configured on the service it serves?"
                )
            time.sleep(0.02)  # poll interval of a bounded wait on a condition


def _probes(backend: RecordingBackend) -> int:
    return sum(r.header(INDEX_HEADER) is None for r in backend.requests)


@dataclass(frozen=True)
class Sleep:
    """Wait a fixed time (e.g. longer than a sticky cookie's or a timeout's duration)."""

    seconds: float

    def __call__(self, backends: Mapping[str, RecordingBackend]) -> None:
        time.sleep(self.seconds)


# -- what to check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the oracle (and so the gateway, unless the request has ``expect_gateway``) must
    answer to one request; UNSET: not checked."""

    status: Any = UNSET
    backend: Any = UNSET
    """The answering recording backend (``X-Backend``); None: no backend answered."""
    body: Any = UNSET
    set_cookie: Any = UNSET
    """Every ``Set-Cookie``, in order (cookie names as our gateway writes them)."""
    same_backend_as: Any = UNSET
    """A script index: this request is answered by the same backend as that one."""
    headers: Any = UNSET
    """Response header name (lower-case) -> its values joined by ``, `` (None: absent)."""


@dataclass(frozen=True)
class Difference:
    """A documented difference from Traefik (README, "Differences from Traefik"): for
    ``backends``, only which requests they received is compared, not what they received;
    the answers to requests with ``expect_gateway`` are pinned per target, not compared."""

    backends: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Group:
    """Consecutive requests compared the same way."""

    where: str
    """``steps[i]``: where the group is written in ``script.yaml``."""
    indexes: range
    compare: Compare = "exact"
    headers: bool = True
    """exact: also compare the headers each backend received (``assert_same_headers``)."""
    response_headers: bool = True
    """exact: also compare the headers each client received."""
    ignore_response_headers: tuple[str, ...] = ()
    """exact: response headers (lower-case) left out of that comparison."""
    cycle: Mapping[str, int] | None = None
    any_of: frozenset[str] | None = None
    expect_backends: Mapping[str | None, int] | None = None
    expect_received: Mapping[str, tuple[int, ...]] | None = None
    difference: Difference | None = None
    answers_differ: tuple[int, ...] = ()
    """Script indexes whose answers differ as documented: each is pinned on Traefik by its
    ``expect`` and on the gateway by its ``expect_gateway``, and left out of the answer
    comparison (what the backends received is still compared)."""


@dataclass(frozen=True)
class Case:
    """One loaded scenario, ready for ``run_both``."""

    name: str
    directory: Path
    routes: Path
    backends: dict[str, str | BackendSpec | list[str | BackendSpec]]
    requests: list[Request]
    actions: dict[int, list[Action]]
    groups: list[Group]
    expects: dict[int, Expect]
    expects_gateway: dict[int, Expect] = field(default_factory=dict)
    """``expect_gateway``: for these indexes the gateway is checked against its own
    expectation, not Traefik's (a documented difference)."""
    allow_cross_namespace: bool = False
    allow_router_errors: bool = False
    settle_cap: float = 5.0
    known_difference: str | None = None
    gateway_refuses: str | None = None
    expect_all_404: bool = False
    addresses: dict[str, str] = field(default_factory=dict)
    """``addresses``: text of ``routes.yaml`` -> the backend whose URL replaces it on each
    target (a ``forwardAuth.address``, which names a URL, not a Service)."""


def case_directories(root: Path) -> list[Path]:
    """Every case directory under ``root`` (names starting with ``_`` or ``.`` skipped)."""
    return sorted(
        path for path in root.iterdir() if path.is_dir() and not path.name.startswith(("_", "."))
    )


# -- loading ----------------------------------------------------------------------------------

_TOP_KEYS = {
    "backends": "required",
    "steps": "required",
    "options": "optional",
    "known_difference": "optional",
    "gateway_refuses": "optional",
    "expect_all_404": "optional",
    "addresses": "optional",
}
_OPTION_KEYS = ("allow_cross_namespace", "allow_router_errors", "settle_cap")
_BACKEND_FIELDS = (
    "name",
    "status",
    "body",
    "body_repeat",
    "delay",
    "headers",
    "refuse",
    "chunked",
)
_REQUEST_KEYS = (
    "host",
    "path",
    "method",
    "headers",
    "body",
    "chunked",
    "source",
    "cookies",
    "cookies_from",
    "digest",
    "background",
    "id",
    "repeat",
    "expect",
    "expect_gateway",
)
_EXPECT_KEYS = ("status", "backend", "body", "set_cookie", "same_backend_as", "headers")
_GROUP_KEYS = (
    "requests",
    "compare",
    "headers",
    "response_headers",
    "ignore_response_headers",
    "cycle",
    "any_of",
    "expect_backends",
    "expect_received",
    "documented_difference",
)
_ACTIONS = ("set_backend", "wait_for_probes", "sleep")
_MAX_REPEAT = 500


class _Reader:
    """Type checks that record every problem with its key path instead of stopping."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.errors: list[str] = []

    def error(self, where: str, problem: str) -> None:
        self.errors.append(
            f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}"
        )

    def mapping(self, value: Any, where: str, known: Sequence[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(where, f"must be a mapping, got {_show(value)}")
            return None
        for key in value:
            if key not in known:
                self.error(
                    _join(where, str(key)), f"unknown key (known: {', '.join(sorted(known))})"
                )
        return value

    def string(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            self.error(where, f"must be a string, got {_show(value)}")
            return None
        return value

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(where, f"must be an integer, got {_show(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(where, f"must be >= {minimum}, got {value}")
            return None
        return value

    def number(self, value: Any, where: str, maximum: float = _WAIT_CAP) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            self.error(where, f"must be a number >= 0, got {_show(value)}")
            return None
        if value > maximum:
            self.error(where, f"must be at most {maximum} (a case stays short), got {value}")
            return None
        return float(value)

    def boolean(self, value: Any, where: str) -> bool | None:
        if not isinstance(value, bool):
            self.error(where, f"must be true or false, got {_show(value)}")
            return None
        return value

    def status(self, value: Any, where: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            self.error(where, f"must be an HTTP status (100-599), got {_show(value)}")
            return None
        return value

    def pairs(
        self, value: Any, where: str, *, allow_null: bool = False
    ) -> tuple[tuple[str, str], ...]:
        """A mapping of strings, or a list of ``[name, value]`` pairs (repeated names);
        ``allow_null``: a value may be null (a backend then leaves that header out)."""
        items: list[Any]
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = [tuple(item) if isinstance(item, list) else item for item in value]
        else:
            self.error(where, f"must be a mapping or a list of [name, value], got {_show(value)}")
            return ()
        out: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and (isinstance(item[1], str) or (allow_null and item[1] is None))
            ):
                self.error(
                    f"{where}[{i}]", f"must be a [name, value] pair of strings, got {_show(item)}"
                )
                continue
            out.append((item[0], item[1]))
        return tuple(out)

    def text_list(self, value: Any, where: str) -> list[str] | None:
        if not isinstance(value, list) or not value:
            self.error(where, f"must be a non-empty list of strings, got {_show(value)}")
            return None
        strings = [self.string(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return [s for s in strings if s is not None]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_case(directory: Path) -> Case:
    """Load and validate ``directory``; raise ScriptError listing every problem."""
    routes, script = directory / "routes.yaml", directory / "script.yaml"
    missing = [p.name for p in (routes, script) if not p.is_file()]
    if missing:
        raise ScriptError(f"{directory}: missing {' and '.join(missing)}")
    problems = _check_routes(routes)
    reader = _Reader(script)
    try:
        raw = yaml.safe_load(script.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScriptError(f"{script}: not valid YAML: {exc}") from None
    case = _Loader(reader, directory).load(raw)
    problems += reader.errors
    if problems or case is None:
        raise ScriptError("\n".join(problems or [f"{script}: invalid"]))
    return case


def _check_routes(routes: Path) -> list[str]:
    """routes.yaml must open with a comment saying what it shows, and be YAML."""
    text = routes.read_text(encoding="utf-8")
    problems = []
    if not text.lstrip().startswith("#"):
        problems.append(f"{routes}: must open with a comment saying what the case shows")
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [*problems, f"{routes}: not valid YAML: {exc}"]
    if not documents:
        problems.append(f"{routes}: no manifests")
    return problems


class _Loader:
    def __init__(self, reader: _Reader, directory: Path) -> None:
        self.r = reader
        self.directory = directory
        self.requests: list[Request] = []
        self.expects: dict[int, Expect] = {}
        self.expects_gateway: dict[int, Expect] = {}
        self.actions: dict[int, list[Action]] = {}
        self.groups: list[Group] = []
        self.ids: dict[str, int] = {}
        self.names: set[str] = set()
        self.refusing: set[str] = set()

    def load(self, raw: Any) -> Case | None:
        r = self.r
        top = r.mapping(raw, "", list(_TOP_KEYS))
        if top is None:
            return None
        for key, need in _TOP_KEYS.items():
            if need == "required" and key not in top:
                r.error(key, "is required")
        backends = self.backends(top.get("backends"), "backends")
        options = self.options(top.get("options", {}), "options")
        steps = top.get("steps")
        if isinstance(steps, list):
            for i, step in enumerate(steps):
                self.step(step, f"steps[{i}]")
        elif "steps" in top:
            r.error("steps", f"must be a list, got {_show(steps)}")
        if not self.requests:
            r.error("steps", "must send at least one request")
        known_difference = gateway_refuses = None
        if "known_difference" in top:
            known_difference = r.string(top["known_difference"], "known_difference")
        if "gateway_refuses" in top:
            gateway_refuses = r.string(top["gateway_refuses"], "gateway_refuses")
            if gateway_refuses is not None and not self.expects:
                r.error(
                    "gateway_refuses",
                    "needs at least one request with an expect: "
                    "only Traefik runs, so the expectations are all that is checked",
                )
            if gateway_refuses is not None and self.expects_gateway:
                r.error(
                    "gateway_refuses",
                    "the gateway runs no request when it refuses the configuration: "
                    "remove expect_gateway",
                )
        expect_all_404 = bool(
            "expect_all_404" in top and r.boolean(top["expect_all_404"], "expect_all_404")
        )
        addresses = self.addresses(top.get("addresses", {}), "addresses")
        if r.errors:
            return None
        return Case(
            name=self.directory.name,
            directory=self.directory,
            routes=self.directory / "routes.yaml",
            backends=backends,
            requests=self.requests,
            actions=self.actions,
            groups=self.groups,
            expects=self.expects,
            expects_gateway=self.expects_gateway,
            known_difference=known_difference,
            gateway_refuses=gateway_refuses,
            expect_all_404=expect_all_404,
            addresses=addresses,
            **options,
        )

    # backends and options

    def backends(
        self, value: Any, where: str
    ) -> dict[str, str | BackendSpec | list[str | BackendSpec]]:
        out: dict[str, str | BackendSpec | list[str | BackendSpec]] = {}
        if not isinstance(value, dict) or not value:
            self.r.error(where, f"must be a non-empty mapping of ns/name:port, got {_show(value)}")
            return out
        specs: dict[str, BackendSpec] = {}
        for key, item in value.items():
            at = f"{where}.{key}"
            if not isinstance(key, str) or not _BACKEND_KEY.match(key):
                self.r.error(at, "must be written namespace/name:port (port number or name)")
                continue
            if isinstance(item, list):
                several = [self.backend(x, f"{at}[{i}]") for i, x in enumerate(item)]
                if not item:
                    self.r.error(at, "lists no server")
                servers = [s for s in several if s is not None]
                for spec in servers:
                    self.remember(spec, specs, at)
                out[key] = list(servers)
            else:
                single = self.backend(item, at)
                if single is not None:
                    self.remember(single, specs, at)
                    out[key] = single
        return out

    def backend(self, value: Any, where: str) -> BackendSpec | None:
        r = self.r
        if isinstance(value, str):
            return BackendSpec(value) if value else None
        m = r.mapping(value, where, _BACKEND_FIELDS)
        if m is None:
            return None
        name = r.string(m.get("name"), f"{where}.name")
        if not name:
            return None
        spec: dict[str, Any] = {}
        if "status" in m:
            spec["status"] = r.status(m["status"], f"{where}.status")
        if "body" in m and (body := r.string(m["body"], f"{where}.body")) is not None:
            spec["body"] = body.encode()
        if "body_repeat" in m:
            times = r.integer(m["body_repeat"], f"{where}.body_repeat", minimum=1)
            if times is not None:
                spec["body"] = (spec.get("body") or f"Hello {name}\n".encode()) * times
        if "delay" in m:
            spec["delay"] = r.number(m["delay"], f"{where}.delay")
        if "headers" in m:
            spec["headers"] = r.pairs(m["headers"], f"{where}.headers", allow_null=True)
        if "refuse" in m:
            spec["refuse"] = r.boolean(m["refuse"], f"{where}.refuse")
        if "chunked" in m:
            spec["chunked"] = r.boolean(m["chunked"], f"{where}.chunked")
        return BackendSpec(name, **{k: v for k, v in spec.items() if v is not None})

    def remember(self, spec: BackendSpec, specs: dict[str, BackendSpec], where: str) -> None:
        if specs.setdefault(spec.name, spec) != spec:
            self.r.error(where, f"backend {spec.name!r} is declared twice, differently")
        self.names.add(spec.name)
        if spec.refuse:
            self.refusing.add(spec.name)

    def addresses(self, value: Any, where: str) -> dict[str, str]:
        """``{"http://auth.test": auth}``: each text replaced by that backend's URL."""
        out: dict[str, str] = {}
        m = self.r.mapping(value, where, [k for k in value] if isinstance(value, dict) else [])
        for text, name in (m or {}).items():
            at = f"{where}.{text}"
            backend = self.r.string(name, at)
            if not isinstance(text, str) or not text:
                self.r.error(at, "must be a non-empty text of routes.yaml")
            elif backend is not None and backend not in self.names:
                self.r.error(at, f"names no backend of `backends`: {_show(backend)}")
            elif backend is not None:
                out[text] = backend
        return out

    def options(self, value: Any, where: str) -> dict[str, Any]:
        m = self.r.mapping(value, where, _OPTION_KEYS)
        out: dict[str, Any] = {}
        if m is None:
            return out
        for key in ("allow_cross_namespace", "allow_router_errors"):
            if key in m and (flag := self.r.boolean(m[key], f"{where}.{key}")) is not None:
                out[key] = flag
        if "settle_cap" in m:
            cap = self.r.number(m["settle_cap"], f"{where}.settle_cap")
            if cap is not None:
                out["settle_cap"] = cap
        return out

    # steps

    def step(self, value: Any, where: str) -> None:
        if isinstance(value, dict) and "requests" in value:
            self.group(value, where)
            return
        kinds = [k for k in _ACTIONS if isinstance(value, dict) and k in value]
        if not isinstance(value, dict) or len(kinds) != 1 or len(value) != 1:
            self.r.error(
                where,
                "must be a request group (a mapping with `requests`) or exactly one action "
                f"of {', '.join(_ACTIONS)}, got {_show(value)}",
            )
            return
        action = self.action(kinds[0], value[kinds[0]], f"{where}.{kinds[0]}")
        if action is not None:
            self.actions.setdefault(len(self.requests), []).append(action)

    def action(self, kind: str, value: Any, where: str) -> Action | None:
        r = self.r
        if kind == "sleep":
            seconds = r.number(value, where)
            return None if seconds is None else Sleep(seconds)
        known = (
            ("backend", "status", "body", "delay")
            if kind == "set_backend"
            else ("backend", "count", "timeout")
        )
        m = r.mapping(value, where, known)
        if m is None:
            return None
        backend = self.backend_name(m.get("backend"), f"{where}.backend")
        if kind == "set_backend":
            status = r.status(m["status"], f"{where}.status") if "status" in m else None
            body = r.string(m["body"], f"{where}.body") if "body" in m else None
            delay = r.number(m["delay"], f"{where}.delay") if "delay" in m else None
            if len(m) < 2:
                r.error(where, "changes nothing: give status, body or delay")
            if backend is None:
                return None
            return SetBackend(backend, status, None if body is None else body.encode(), delay)
        count = r.integer(m.get("count", 2), f"{where}.count", minimum=1)
        timeout = r.number(m.get("timeout", 5.0), f"{where}.timeout")
        if backend is None or count is None or timeout is None:
            return None
        return WaitForProbes(backend, count, timeout)

    def backend_name(self, value: Any, where: str) -> str | None:
        name = self.r.string(value, where)
        if name is None:
            return None
        if name not in self.names:
            self.r.error(where, f"no backend named {name!r} in `backends`")
            return None
        if name in self.refusing:
            self.r.error(where, f"backend {name!r} refuses connections: it has no server")
            return None
        return name

    def group(self, value: dict[str, Any], where: str) -> None:
        r = self.r
        m = r.mapping(value, where, _GROUP_KEYS)
        if m is None:
            return
        start = len(self.requests)
        items = m["requests"]
        if not isinstance(items, list) or not items:
            r.error(f"{where}.requests", f"must be a non-empty list, got {_show(items)}")
            items = []
        for i, item in enumerate(items):
            self.request(item, f"{where}.requests[{i}]")
        indexes = range(start, len(self.requests))
        compare = m.get("compare", "exact")
        if compare not in COMPARE_MODES:
            r.error(
                f"{where}.compare",
                f"must be one of {', '.join(COMPARE_MODES)}, got {_show(compare)}",
            )
            compare = "exact"
        group: dict[str, Any] = {}
        for flag in ("headers", "response_headers"):
            if flag in m:
                if compare != "exact":
                    r.error(f"{where}.{flag}", "applies to compare: exact only")
                group[flag] = r.boolean(m[flag], f"{where}.{flag}")
        if "ignore_response_headers" in m:
            names = r.text_list(m["ignore_response_headers"], f"{where}.ignore_response_headers")
            group["ignore_response_headers"] = tuple(n.lower() for n in names or ())
        if "cycle" in m:
            group["cycle"] = self.cycle(m["cycle"], f"{where}.cycle", compare, len(indexes))
        if "any_of" in m or compare == "served-by-any":
            if compare != "served-by-any":
                r.error(f"{where}.any_of", "applies to compare: served-by-any only")
            elif "any_of" not in m:
                r.error(f"{where}.any_of", "is required with compare: served-by-any")
            else:
                names = r.text_list(m["any_of"], f"{where}.any_of") or []
                for j, name in enumerate(names):
                    if name not in self.names:
                        r.error(f"{where}.any_of[{j}]", f"no backend named {name!r} in `backends`")
                group["any_of"] = frozenset(names)
        if "expect_backends" in m:
            group["expect_backends"] = self.expect_backends(
                m["expect_backends"], f"{where}.expect_backends", len(indexes)
            )
        if "expect_received" in m:
            group["expect_received"] = self.expect_received(
                m["expect_received"], f"{where}.expect_received", len(indexes)
            )
        differ = tuple(i for i in indexes if i in self.expects_gateway)
        if "documented_difference" in m:
            group["difference"] = self.difference(
                m["documented_difference"], f"{where}.documented_difference", compare, differ
            )
        elif differ:
            r.error(
                f"{where}.documented_difference",
                "is required when a request has expect_gateway: "
                "say which documented difference the answers show",
            )
        group["answers_differ"] = differ
        self.groups.append(
            Group(
                where=where,
                indexes=indexes,
                compare=compare,
                **{k: v for k, v in group.items() if v is not None},
            )
        )

    def cycle(self, value: Any, where: str, compare: str, size: int) -> dict[str, int] | None:
        r = self.r
        if compare != "counts":
            r.error(where, "applies to compare: counts only")
            return None
        if not isinstance(value, dict) or not value:
            r.error(where, f"must map backend names to their weight, got {_show(value)}")
            return None
        out = {}
        for name, weight in value.items():
            if name not in self.names:
                r.error(f"{where}.{name}", f"no backend named {name!r} in `backends`")
            w = r.integer(weight, f"{where}.{name}", minimum=1)
            if w is not None:
                out[str(name)] = w
        length = sum(out.values())
        if length and size % length:
            r.error(where, f"the group's {size} requests are not whole cycles of {length}")
        return out

    def expect_backends(self, value: Any, where: str, size: int) -> dict[str | None, int] | None:
        if not isinstance(value, dict) or not value:
            self.r.error(where, f"must map backend names (or null) to counts, got {_show(value)}")
            return None
        out: dict[str | None, int] = {}
        for name, count in value.items():
            if name is not None and name not in self.names:
                self.r.error(f"{where}.{name}", f"no backend named {name!r} in `backends`")
            n = self.r.integer(count, f"{where}.{name}", minimum=0)
            if n is not None:
                out[name] = n
        if sum(out.values()) != size:
            self.r.error(
                where, f"counts add up to {sum(out.values())}, the group has {size} requests"
            )
        return out

    def expect_received(
        self, value: Any, where: str, size: int
    ) -> dict[str, tuple[int, ...]] | None:
        if not isinstance(value, dict) or not value:
            self.r.error(where, f"must map backend names to positions, got {_show(value)}")
            return None
        out = {}
        for name, positions in value.items():
            at = f"{where}.{name}"
            if name not in self.names:
                self.r.error(at, f"no backend named {name!r} in `backends`")
            if not isinstance(positions, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= size for p in positions
            ):
                self.r.error(
                    at, f"must list positions 1..{size} within the group, got {_show(positions)}"
                )
                continue
            if positions != sorted(set(positions)):
                self.r.error(at, "positions must be increasing, each once")
            out[str(name)] = tuple(positions)
        return out

    def difference(
        self, value: Any, where: str, compare: str, differ: tuple[int, ...]
    ) -> Difference | None:
        r = self.r
        m = r.mapping(value, where, ("backends", "reason"))
        if m is None:
            return None
        if compare != "exact":
            r.error(where, "applies to compare: exact only")
        names: list[str] = []
        if "backends" in m:
            names = r.text_list(m["backends"], f"{where}.backends") or []
        elif not differ:
            r.error(
                where,
                "documents nothing: list the `backends` whose receipts differ, or pin the "
                "differing answers with expect_gateway",
            )
        for j, name in enumerate(names):
            if name not in self.names:
                r.error(f"{where}.backends[{j}]", f"no backend named {name!r} in `backends`")
        reason = r.string(m.get("reason"), f"{where}.reason")
        if reason is not None and len(reason.strip()) < 10:
            r.error(f"{where}.reason", "must say what differs and where it is documented")
        return Difference(tuple(names), reason or "")

    def request(self, value: Any, where: str) -> None:
        r = self.r
        m = r.mapping(value, where, _REQUEST_KEYS)
        if m is None:
            return
        host = r.string(m.get("host"), f"{where}.host") if "host" in m else None
        if "host" not in m:
            r.error(f"{where}.host", "is required")
        path = r.string(m.get("path", "/"), f"{where}.path")
        if path is not None and not path.startswith("/"):
            r.error(f"{where}.path", f"must start with /, got {path!r}")
        method = r.string(m.get("method", "GET"), f"{where}.method")
        headers = r.pairs(m["headers"], f"{where}.headers") if "headers" in m else ()
        cookies = r.pairs(m["cookies"], f"{where}.cookies") if "cookies" in m else ()
        body = None
        if "body" in m and (text := r.string(m["body"], f"{where}.body")) is not None:
            body = text.encode()
        chunked = bool("chunked" in m and r.boolean(m["chunked"], f"{where}.chunked"))
        if chunked and body is None:
            r.error(f"{where}.chunked", "needs a body")
        source = r.string(m["source"], f"{where}.source") if "source" in m else None
        if source is not None and not re.fullmatch(r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}", source):
            r.error(f"{where}.source", f"must be a loopback address 127.x.y.z, got {source!r}")
        cookies_from = self.request_id(m, "cookies_from", where)
        digest = self.digest(m["digest"], f"{where}.digest") if "digest" in m else None
        if cookies_from is not None and self.requests[cookies_from].background:
            r.error(f"{where}.cookies_from", "names a background request (no answer yet)")
        background = bool("background" in m and r.boolean(m["background"], f"{where}.background"))
        repeat = r.integer(m.get("repeat", 1), f"{where}.repeat", minimum=1) or 1
        if repeat > _MAX_REPEAT:
            r.error(f"{where}.repeat", f"must be at most {_MAX_REPEAT}")
            repeat = 1
        expect = self.expect(m["expect"], f"{where}.expect") if "expect" in m else None
        expect_gateway = None
        if "expect_gateway" in m:
            expect_gateway = self.expect(m["expect_gateway"], f"{where}.expect_gateway")
            if "expect" not in m:
                r.error(
                    f"{where}.expect_gateway",
                    "needs `expect` beside it: Traefik's answer, pinned too",
                )
        if "id" in m and (name := r.string(m["id"], f"{where}.id")) is not None:
            if repeat > 1:
                r.error(f"{where}.id", "names one request: not allowed with repeat")
            elif name in self.ids:
                r.error(f"{where}.id", f"{name!r} is already the id of an earlier request")
            else:
                self.ids[name] = len(self.requests)
        request = Request.make(
            host or "",
            path or "/",
            method=method or "GET",
            headers=headers,
            cookies=cookies,
            body=body,
            source=source,
            chunked=chunked,
            cookies_from=cookies_from,
            digest=digest,
            background=background,
        )
        for _ in range(repeat):
            if expect is not None:
                self.expects[len(self.requests)] = expect
            if expect_gateway is not None:
                self.expects_gateway[len(self.requests)] = expect_gateway
            self.requests.append(request)

    def digest(self, value: Any, where: str) -> DigestAnswer | None:
        """``{user, password, from, nc, uri}``: answer the challenge of request ``from``."""
        m = self.r.mapping(value, where, ("user", "password", "from", "nc", "uri"))
        if m is None:
            return None
        texts = {k: self.r.string(m.get(k, ""), f"{where}.{k}") for k in ("user", "password")}
        challenge_from = self.request_id(m, "from", where)
        if challenge_from is None:
            if "from" not in m:
                self.r.error(f"{where}.from", "is required: the id of the challenged request")
            return None
        nc = self.r.string(m.get("nc", "00000001"), f"{where}.nc")
        uri = self.r.string(m["uri"], f"{where}.uri") if "uri" in m else None
        return DigestAnswer(
            texts["user"] or "", texts["password"] or "", challenge_from, nc or "", uri
        )

    def request_id(self, m: dict[str, Any], key: str, where: str) -> int | None:
        if key not in m:
            return None
        name = self.r.string(m[key], f"{where}.{key}")
        if name is None:
            return None
        if name not in self.ids:
            self.r.error(f"{where}.{key}", f"no earlier request has id {name!r}")
            return None
        return self.ids[name]

    def expect(self, value: Any, where: str) -> Expect | None:
        r = self.r
        m = r.mapping(value, where, _EXPECT_KEYS)
        if m is None:
            return None
        if not m:
            r.error(where, "expects nothing")
        out: dict[str, Any] = {}
        if "status" in m:
            out["status"] = r.status(m["status"], f"{where}.status")
        if "backend" in m:
            name = m["backend"]
            if name is not None and self.backend_name(name, f"{where}.backend") is None:
                return None
            out["backend"] = name
        if "body" in m and (body := r.string(m["body"], f"{where}.body")) is not None:
            out["body"] = body.encode()
        if "set_cookie" in m:
            cookies = m["set_cookie"]
            if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
                r.error(f"{where}.set_cookie", f"must be a list of strings, got {_show(cookies)}")
            else:
                out["set_cookie"] = tuple(cookies)
        if "same_backend_as" in m:
            out["same_backend_as"] = self.request_id(m, "same_backend_as", where)
        if "headers" in m:
            headers = m["headers"]
            if not isinstance(headers, dict) or not all(
                isinstance(v, str) or v is None for v in headers.values()
            ):
                r.error(
                    f"{where}.headers", f"must map names to a string or null, got {_show(headers)}"
                )
            else:
                out["headers"] = {str(k).lower(): v for k, v in headers.items()}
        return Expect(**{k: v for k, v in out.items() if v is not None or k == "backend"})
