"""A fake Kubernetes API server: list and watch, as client-go and our provider use them.

    with FakeApiServer() as api:
        api.put({"apiVersion": "v1", "kind": "Service", "metadata": {...}, "spec": {...}})
        ... point Traefik (--providers.kubernetescrd.endpoint=api.url) or ours at it ...
        api.delete("v1", "Service", "default", "app-v1")
        api.expire()          # compaction: every watch resumed from an older RV gets 410

Written from the API contract (API concepts: efficient detection of changes, watch
bookmarks, KEP-3157 watch-list) and checked by the real Traefik 3.7.15 (client-go 0.35),
which routes from what it serves (tests/conformance/test_kubernetes_provider.py):

* ``GET`` on ``/api/v1/[namespaces/NS/]PLURAL`` and ``/apis/GROUP/VERSION/[namespaces/NS/]PLURAL``
  lists (``metadata.resourceVersion`` is the store's) with ``labelSelector``
  (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``);
* ``?watch=1`` streams ``{"type": ..., "object": ...}`` lines: ``ADDED``/``MODIFIED``/
  ``DELETED`` after ``resourceVersion``; with ``resourceVersion`` unset or ``0`` or with
  ``sendInitialEvents=true`` first a synthetic ``ADDED`` per object, and with
  ``sendInitialEvents`` the ``BOOKMARK`` annotated ``k8s.io/initial-events-end: "true"``;
  ``BOOKMARK``s every ``bookmark_interval`` with ``allowWatchBookmarks``; closed after
  ``timeoutSeconds``; a ``resourceVersion`` older than the compaction point answers an
  ``ERROR`` event carrying a ``410 Expired`` Status (a list or a non-watch get with
  ``resourceVersionMatch=Exact`` answers ``410`` directly);
* booleans parsed as Go's ``strconv.ParseBool`` (``1``, ``t``, ``true``, ``True``...);
* ``/version``, ``/api``, ``/apis``, ``/apis/GROUP/VERSION`` discovery.

Any plural of a known API path lists (empty unless objects were put): client-go asks
for kinds a scenario never uses. Every request is recorded (``requests``) so a test can
say what a client asked for. The server runs uvicorn in a thread with its own loop;
``put``/``delete``/``expire``/``drop_watches`` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .traefik import free_port

__all__ = ["KINDS", "FakeApiServer"]

# plural -> (apiVersion, kind, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "services": ("v1", "Service", True),
    "endpoints": ("v1", "Endpoints", True),
    "secrets": ("v1", "Secret", True),
    "configmaps": ("v1", "ConfigMap", True),
    "namespaces": ("v1", "Namespace", False),
    "nodes": ("v1", "Node", False),
    "serviceaccounts": ("v1", "ServiceAccount", True),
    "apps/deployments": ("apps/v1", "Deployment", True),
    "rbac.authorization.k8s.io/clusterroles": (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        False,
    ),
    "rbac.authorization.k8s.io/clusterrolebindings": (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        False,
    ),
    "policy/poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", True),
    "pods": ("v1", "Pod", True),
    "discovery.k8s.io/endpointslices": ("discovery.k8s.io/v1", "EndpointSlice", True),
    "networking.k8s.io/ingressclasses": ("networking.k8s.io/v1", "IngressClass", False),
    "networking.k8s.io/ingresses": ("networking.k8s.io/v1", "Ingress", True),
}
for _group in ("traefik.io", "traefik.containo.us"):
    for _kind in (
        "IngressRoute",
        "IngressRouteTCP",
        "IngressRouteUDP",
        "Middleware",
        "MiddlewareTCP",
        "TLSOption",
        "TLSStore",
        "TraefikService",
        "ServersTransport",
        "ServersTransportTCP",
    ):
        KINDS[f"{_group}/{_kind.lower()}s"] = (f"{_group}/v1alpha1", _kind, True)

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


def _bool(value: str | None) -> bool:
    return value in _TRUE


def _plural_of(api_version: str, kind: str) -> str:
    for key, (api, k, _) in KINDS.items():
        if api == api_version and k == kind:
            return key
    raise KeyError(f"unknown kind {api_version} {kind}")


_SELECTOR = re.compile(
    r"^\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def matches_selector(labels: dict[str, str], selector: str) -> bool:
    """Kubernetes' label selector, set-based and equality-based."""
    for term in _split_selector(selector):
        m = _SELECTOR.match(term)
        if m is None:
            raise ValueError(f"unable to parse requirement: {term!r}")
        neg, key, op, value, set_op, values = m.groups()
        if op in ("=", "=="):
            ok = labels.get(key) == value
        elif op == "!=":
            ok = labels.get(key) != value
        elif set_op:
            choices = {v.strip() for v in values.split(",")}
            ok = labels.get(key) in choices if set_op == "in" else labels.get(key) not in choices
        else:
            ok = (key in labels) != bool(neg)
        if not ok:
            return False
    return True


@dataclass
class _Event:
    rv: int
    key: str
    type: str
    obj: dict[str, Any]


@dataclass(eq=False)
class _Watch:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    seen: int = 0
    """The store's resourceVersion up to which this watch has written its events."""


class FakeApiServer:
    """The fake API server on ``http://127.0.0.1:<port>`` (``.url``)."""

    def __init__(self, *, bookmark_interval: float = 1.0, port: int = 0) -> None:
        self.bookmark_interval = bookmark_interval
        self.port = port
        self._lock = threading.Lock()
        self._rv = 1
        self._compacted = 0
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._events: list[_Event] = []
        self._watches: set[_Watch] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[str] = []
        """Every request's path and query, in order."""
        self.expired: list[tuple[str, str]] = []
        """``(User-Agent, resource)`` of every watch answered 410 Expired."""
        self.fail_next: list[int] = []
        """Status codes the next requests answer (a 5xx fault), popped one per request."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- the store ----------------------------------------------------------------------

    def put(self, *objs: dict[str, Any]) -> None:
        """Create or replace objects (``ADDED`` or ``MODIFIED``)."""
        for obj in objs:
            obj = copy.deepcopy(obj)
            key = _plural_of(obj["apiVersion"], obj["kind"])
            meta = obj.setdefault("metadata", {})
            ident = ("", meta["name"])
            if KINDS[key][2]:
                meta.setdefault("namespace", "default")
                ident = (meta["namespace"], meta["name"])
            with self._lock:
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
                meta.setdefault("uid", f"uid-{key}-{ident[0]}-{ident[1]}")
                store = self._objects.setdefault(key, {})
                kind = "MODIFIED" if ident in store else "ADDED"
                store[ident] = obj
                self._events.append(_Event(self._rv, key, kind, obj))
        self._wake()

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A copy of a stored object."""
        key = _plural_of(api_version, kind)
        with self._lock:
            return copy.deepcopy(self._objects[key][(namespace if KINDS[key][2] else "", name)])

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        key = _plural_of(api_version, kind)
        with self._lock:
            obj = self._objects.get(key, {}).pop((namespace if KINDS[key][2] else "", name))
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._events.append(_Event(self._rv, key, "DELETED", obj))
        self._wake()

    def expire(self) -> None:
        """Compact the history: a watch or list from any earlier resourceVersion answers
        410 Expired, and every open watch is closed so that its client has to resume."""
        with self._lock:
            self._rv += 1
            self._compacted = self._rv
            self._events.clear()
        self.drop_watches()

    def drop_watches(self) -> None:
        """Close every open watch stream (an API server restart, a load balancer timeout)."""
        with self._lock:
            for w in self._watches:
                w.dropped = True
        self._wake()

    def watch_count(self) -> int:
        with self._lock:
            return len(self._watches)

    def wait_delivered(self, timeout: float = 10.0) -> None:
        """Wait until every open watch has written the events of every change made so
        far: a client that then sees a later change has been sent this one on every
        stream (one stream per kind, which a client reads independently)."""
        target = self._rv
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                behind = [w for w in self._watches if w.seen < target and not w.dropped]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(behind)} watches did not deliver up to {target}")
            time.sleep(0.02)  # poll interval of a bounded wait on a condition

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            loop.call_soon_threadsafe(w.wake.set)

    # -- the HTTP API -------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/version", self._version),
                Route("/api", self._api),
                Route("/apis", self._apis),
                Route("/api/v1", self._group_resources),
                Route("/apis/{group}/{version}", self._group_resources),
                Route("/api/v1/{plural}", self._collection),
                Route("/api/v1/namespaces/{namespace}/{plural}", self._collection),
                Route("/apis/{group}/{version}/{plural}", self._collection),
                Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._collection),
                Route("/api/v1/namespaces/{namespace}/{plural}/{name}", self._one),
                Route("/apis/{group}/{version}/{plural}/{name}", self._one),
                Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", self._one),
            ]
        )

    async def _version(self, request: Request) -> Response:
        self._record(request)
        return JSONResponse(
            {"major": "1", "minor": "35", "gitVersion": "v1.35.0-fake", "platform": "linux/amd64"}
        )

    async def _api(self, request: Request) -> Response:
        self._record(request)
        return JSONResponse(
            {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        )

    async def _apis(self, request: Request) -> Response:
        self._record(request)
        groups: dict[str, set[str]] = {}
        for api, _, _ in KINDS.values():
            group, _, version = api.rpartition("/")
            if group:
                groups.setdefault(group, set()).add(version)
        return JSONResponse(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [
                            {"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs)
                        ],
                        "preferredVersion": {"groupVersion": f"{g}/{min(vs)}", "version": min(vs)},
                    }
                    for g, vs in sorted(groups.items())
                ],
            }
        )

    async def _group_resources(self, request: Request) -> Response:
        self._record(request)
        group = request.path_params.get("group", "")
        version = request.path_params.get("version", "v1")
        api = f"{group}/{version}" if group else version
        resources = [
            {
                "name": key.rpartition("/")[2],
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list", "watch"],
            }
            for key, (a, kind, namespaced) in KINDS.items()
            if a == api
        ]
        if not resources:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        return JSONResponse(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": api,
                "resources": resources,
            }
        )

    def _record(self, request: Request) -> None:
        query = request.url.query
        self.requests.append(request.url.path + (f"?{query}" if query else ""))

    @staticmethod
    def _status(code: int, reason: str, message: str) -> Response:
        return JSONResponse(_status_body(code, reason, message), status_code=code)

    async def _collection(self, request: Request) -> Response:
        self._record(request)
        if self.fail_next:
            code = self.fail_next.pop(0)
            return self._status(code, "InternalError", "injected fault")
        group = request.path_params.get("group", "")
        version = request.path_params.get("version", "v1")
        key = f"{group}/{request.path_params['plural']}" if group else request.path_params["plural"]
        if key not in KINDS or KINDS[key][0] != (f"{group}/{version}" if group else version):
            return self._status(404, "NotFound", "the server could not find the requested resource")
        namespace = request.path_params.get("namespace")
        q = request.query_params
        selector = q.get("labelSelector", "")
        try:
            matches_selector({}, selector)
        except ValueError as exc:
            return self._status(400, "BadRequest", str(exc))
        rv_text = q.get("resourceVersion", "")
        if rv_text and not rv_text.isdigit():
            return self._status(400, "BadRequest", f"invalid resource version {rv_text!r}")
        rv = int(rv_text or 0)
        if not _bool(q.get("watch")):
            if q.get("resourceVersionMatch") == "Exact" and 0 < rv < self._compacted:
                return self._status(
                    410, "Expired", f"too old resource version: {rv} ({self._compacted})"
                )
            with self._lock:
                items = self._select(key, namespace, selector)
                current = self._rv
            api, kind, _ = KINDS[key]
            return JSONResponse(
                {
                    "kind": f"{kind}List",
                    "apiVersion": api,
                    "metadata": {"resourceVersion": str(current)},
                    "items": items,
                }
            )
        timeout = float(q.get("timeoutSeconds") or 1800)
        return StreamingResponse(
            self._watch(
                request.headers.get("user-agent", ""),
                key,
                namespace,
                selector,
                rv_text,
                initial=_bool(q.get("sendInitialEvents")),
                bookmarks=_bool(q.get("allowWatchBookmarks")),
                timeout=timeout,
            ),
            media_type="application/json",
        )

    async def _one(self, request: Request) -> Response:
        """``GET`` of one object (what ``kubectl apply`` reads before it patches)."""
        self._record(request)
        group = request.path_params.get("group", "")
        key = f"{group}/{request.path_params['plural']}" if group else request.path_params["plural"]
        name = request.path_params["name"]
        with self._lock:
            obj = self._objects.get(key, {}).get((request.path_params.get("namespace", ""), name))
        if obj is None:
            return self._status(
                404, "NotFound", f'{request.path_params["plural"]} "{name}" not found'
            )
        return JSONResponse(obj)

    def _select(self, key: str, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        out = []
        for (ns, _), obj in sorted(self._objects.get(key, {}).items()):
            if namespace is not None and ns != namespace:
                continue
            if selector and not matches_selector(obj["metadata"].get("labels") or {}, selector):
                continue
            out.append(obj)
        return out

    def _bookmark(self, key: str, rv: int, *, initial_end: bool = False) -> bytes:
        api, kind, _ = KINDS[key]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line("BOOKMARK", {"kind": kind, "apiVersion": api, "metadata": meta})

    async def _watch(
        self,
        agent: str,
        key: str,
        namespace: str | None,
        selector: str,
        rv_text: str,
        *,
        initial: bool,
        bookmarks: bool,
        timeout: float,
    ) -> AsyncIterator[bytes]:
        watch = _Watch()
        with self._lock:
            self._watches.add(watch)
            rv = int(rv_text or 0)
            expired = not initial and rv not in (0,) and rv < self._compacted
            synthetic = initial or rv == 0
            if synthetic:
                items = self._select(key, namespace, selector)
                last = self._rv
            else:
                items, last = [], rv
        try:
            if expired:
                self.expired.append((agent, key))
                yield _line(
                    "ERROR",
                    _status_body(
                        410, "Expired", f"too old resource version: {rv} ({self._compacted})"
                    ),
                )
                return
            for obj in items:
                yield _line("ADDED", obj)
            if initial:
                yield self._bookmark(key, last, initial_end=True)
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.bookmark_interval
            while not watch.dropped:
                with self._lock:
                    pending = [e for e in self._events if e.rv > last and e.key == key]
                    current = self._rv
                for event in pending:
                    last = event.rv
                    meta = event.obj["metadata"]
                    if namespace is not None and meta.get("namespace") != namespace:
                        continue
                    if selector and not matches_selector(meta.get("labels") or {}, selector):
                        continue
                    yield _line(event.type, event.obj)
                watch.seen = current
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now >= next_bookmark:
                    last = max(last, current)
                    yield self._bookmark(key, last)
                    next_bookmark = now + self.bookmark_interval
                watch.wake.clear()
                wait = min(deadline, next_bookmark if bookmarks else deadline) - time.monotonic()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.wake.wait(), max(wait, 0.001))
        finally:
            with self._lock:
                self._watches.discard(watch)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        if not self.port:
            self.port = free_port()
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            loop.run_until_complete(server.serve())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-apiserver", daemon=True)
        self._thread.start()
        ready.wait(5)
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.drop_watches()
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
