"""The Kubernetes provider: list and watch the API, hand each new configuration on.

    provider = KubernetesProvider(Connection.in_cluster(), on_config=apply)
    await provider.run()          # until cancelled

One :class:`Reflector` per watched kind (:data:`~..config.kubernetes.WATCHED`) and
namespace keeps a cache of objects: it lists, then watches from the list's
``resourceVersion`` with ``allowWatchBookmarks`` and a random ``timeoutSeconds`` of
300-600 s (as client-go), follows the version through events and bookmarks, and on
``410 Gone``/``Expired`` lists again and replaces its cache whole, so that an object
deleted during the gap is gone too. A failed connection is retried with jittered
exponential backoff (0.2 s to 30 s). The service-account token is read again on every
connection (bound tokens rotate).

:class:`KubernetesProvider` waits until every reflector has listed once, then builds the
configuration with :func:`~..config.kubernetes.config_from_objects` (an invalid object is
logged at error with its name and left out, or only the failed routes of an IngressRoute,
as Traefik does) and calls ``on_config``.
After that, changes are throttled as Traefik's ``providersThrottleDuration`` (2 s): a
change is applied at once (after 50 ms that fold a burst into one load), then changes
wait until ``throttle`` seconds have passed and are folded into one load; objects equal
(status and bookkeeping metadata aside) to the last ones applied are not applied again.
A load that fails outright keeps the last good configuration.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..config.kubernetes import (
    WATCHED,
    ApiKind,
    KubernetesLoad,
    config_from_objects,
    object_document,
)
from ..config.models import Config
from ..exceptions import ConfigError
from ..reload import run_paced

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "Connection",
    "KubernetesProvider",
    "Reflector",
]

logger = logging.getLogger("traefikservice_asgi.kubernetes")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_THROTTLE = 2.0
_BACKOFF_MIN, _BACKOFF_MAX = 0.2, 30.0
_BATCH = 0.05


class ExpiredError(Exception):
    """The API answered 410: the resourceVersion is older than its history."""


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the API is and how to authenticate: Traefik's ``endpoint``, ``token`` and
    ``certAuthFilePath``; ``token_file`` is read on every connection."""

    server: str
    token: str = ""
    token_file: Path | None = None
    ca_file: Path | None = None
    ca_data: bytes | None = None
    client_cert: tuple[str, str] | None = None
    insecure: bool = False

    @classmethod
    def in_cluster(cls, base: Path = SERVICE_ACCOUNT_DIR) -> Connection:
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        if not host:
            raise ValueError(
                "not in a cluster (KUBERNETES_SERVICE_HOST is not set): "
                "pass --kubeconfig or --kubernetes-endpoint"
            )
        if ":" in host:
            host = f"[{host}]"
        return cls(
            server=f"https://{host}:{port}",
            token_file=base / "token",
            ca_file=base / "ca.crt",
        )

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> Connection:
        """The current context (or ``context``) of a kubeconfig: server, CA, and a token,
        a token file or a client certificate (exec plugins are not supported)."""
        data = yaml.safe_load(path.read_text()) or {}
        name = context or data.get("current-context")

        def pick(section: str, key: str) -> dict[str, Any]:
            for entry in data.get(section) or []:
                if entry.get("name") == key:
                    return dict(entry.get(section[:-1]) or {})
            raise ValueError(f"{path}: {section[:-1]} {key!r} not found")

        ctx = pick("contexts", str(name))
        cluster, user = pick("clusters", ctx["cluster"]), pick("users", ctx.get("user", ""))
        if "exec" in user or "auth-provider" in user:
            raise ValueError(
                f"{path}: user {ctx.get('user')!r}: exec and auth-provider are not supported"
            )

        def rel(p: str) -> Path:
            return (path.parent / p).resolve()

        cert = None
        if "client-certificate" in user and "client-key" in user:
            cert = (str(rel(user["client-certificate"])), str(rel(user["client-key"])))
        return cls(
            server=str(cluster["server"]).rstrip("/"),
            token=str(user.get("token", "")),
            token_file=rel(user["tokenFile"]) if "tokenFile" in user else None,
            ca_file=rel(cluster["certificate-authority"])
            if "certificate-authority" in cluster
            else None,
            ca_data=base64.b64decode(cluster["certificate-authority-data"])
            if "certificate-authority-data" in cluster
            else None,
            client_cert=cert,
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        )

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
        headers = {"Accept": "application/json", "User-Agent": "traefikservice-asgi"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def client(self) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = not self.insecure
        if not self.insecure and (self.ca_file or self.ca_data or self.client_cert):
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None,
                cadata=self.ca_data.decode() if self.ca_data else None,
            )
            if self.client_cert:
                context.load_cert_chain(*self.client_cert)
            verify = context
        return httpx.AsyncClient(
            base_url=self.server,
            verify=verify,
            trust_env=False,
            timeout=httpx.Timeout(10.0, read=None),
        )


def _jitter(delay: float) -> float:
    return delay * random.uniform(0.5, 1.5)


@dataclass(eq=False)
class Reflector:
    """The cache of one kind in one namespace (``None``: all), kept by list and watch."""

    client: httpx.AsyncClient
    connection: Connection
    kind: ApiKind
    namespace: str | None
    label_selector: str
    on_change: Callable[[], None]
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    resource_version: str = ""
    relists: int = 0

    def _params(self) -> dict[str, str]:
        selector = self.label_selector if self.kind.crd else ""
        selector = ",".join(s for s in (selector, self.kind.selector) if s)
        return {"labelSelector": selector} if selector else {}

    async def run(self) -> None:
        delay = _BACKOFF_MIN
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                delay = _BACKOFF_MIN  # a watch that ended normally: resume at once
            except ExpiredError:
                logger.info(
                    "%s: resourceVersion %s expired, listing again", self, self.resource_version
                )
                self.resource_version = ""
            except (httpx.HTTPError, OSError, ValueError) as exc:
                logger.warning("%s: %s; retrying in %.1f s", self, exc or type(exc).__name__, delay)
                await asyncio.sleep(_jitter(delay))
                delay = min(delay * 2, _BACKOFF_MAX)

    def __str__(self) -> str:
        return f"{self.kind.api_version} {self.kind.plural} in {self.namespace or 'all namespaces'}"

    async def _list(self) -> None:
        response = await self.client.get(
            self.kind.path(self.namespace), params=self._params(), headers=self.connection.headers()
        )
        if response.status_code == 410:
            raise ExpiredError
        if response.status_code == 404 and self.kind.crd:
            # The CRD is not installed: nothing of this kind, as Traefik logs and goes on.
            logger.warning("%s: not found (is the CRD installed?)", self)
            items: list[dict[str, Any]] = []
            version = "0"
        else:
            response.raise_for_status()
            body = response.json()
            items, version = body.get("items") or [], body["metadata"]["resourceVersion"]
        fresh = {}
        for obj in items:
            obj.setdefault("apiVersion", self.kind.api_version)
            obj.setdefault("kind", self.kind.kind)
            fresh[self._ident(obj)] = obj
        changed = fresh != self.objects
        self.objects, self.resource_version = fresh, version
        self.relists += 1
        self.synced.set()
        if changed:
            self.on_change()

    @staticmethod
    def _ident(obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return (str(meta.get("namespace", "")), str(meta.get("name", "")))

    async def _watch(self) -> None:
        if self.resource_version == "0":  # a missing CRD: look again later
            await asyncio.sleep(_jitter(_BACKOFF_MAX))
            self.resource_version = ""
            return
        params = {
            **self._params(),
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.resource_version,
            "timeoutSeconds": str(random.randint(300, 600)),
        }
        started, events = asyncio.get_running_loop().time(), 0
        async with self.client.stream(
            "GET", self.kind.path(self.namespace), params=params, headers=self.connection.headers()
        ) as response:
            if response.status_code == 410:
                raise ExpiredError
            response.raise_for_status()
            async for line in response.aiter_lines():
                events += 1
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410 or obj.get("reason") in ("Expired", "Gone"):
                        raise ExpiredError
                    raise ValueError(f"watch error: {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = str(version)
                if kind == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", self.kind.api_version)
                obj.setdefault("kind", self.kind.kind)
                ident = self._ident(obj)
                if kind == "DELETED":
                    if self.objects.pop(ident, None) is not None:
                        self.on_change()
                elif kind in ("ADDED", "MODIFIED"):
                    self.objects[ident] = obj
                    self.on_change()
        if not events and asyncio.get_running_loop().time() - started < 1.0:
            # client-go's "very short watch": back off instead of reconnecting in a loop
            raise ValueError("very short watch: closed within a second, no event")


ConfigCallback = Callable[[Config], Awaitable[None] | None]


class KubernetesProvider:
    """The whole provider: a reflector per kind and namespace, the throttle, the loads.

    ``files`` are YAML texts served beside the objects (``serve PATH --kubernetes``);
    ``load_options`` are :func:`~..config.loader.load_config`'s keywords (the
    :class:`~..options.GatewayOptions` that shape a configuration); ``on_config`` is
    called with each new configuration (the live reload's entry point).
    """

    def __init__(
        self,
        connection: Connection,
        on_config: ConfigCallback,
        *,
        namespaces: Sequence[str] = (),
        label_selector: str = "",
        load_options: Mapping[str, Any] | None = None,
        throttle: float = DEFAULT_THROTTLE,
        kinds: Sequence[ApiKind] = WATCHED,
        files: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.connection = connection
        self.on_config = on_config
        self.namespaces = tuple(namespaces)
        self.label_selector = label_selector
        self.load_options = dict(load_options or {})
        self.throttle = throttle
        self.kinds = tuple(kinds)
        self.files = tuple(files)
        """YAML files served beside the API's objects: ``(text, file)``, read once."""
        self.config: Config | None = None
        """The last configuration applied."""
        self.loads = 0
        self.skipped_objects = 0
        """Objects left out of loads, whole or in part (routes of an IngressRoute), because
        they are invalid (a counter, as a metric)."""
        self._changed = asyncio.Event()
        self._signature: str | None = None
        self.reflectors: list[Reflector] = []

    def _signal(self) -> None:
        self._changed.set()

    def objects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for reflector in self.reflectors:
            out.extend(reflector.objects.values())
        return out

    def _load(self, objects: list[dict[str, Any]]) -> tuple[str, KubernetesLoad] | None:
        """In a paced thread (each object's YAML, its parse and the resolve are
        O(objects)): the objects' signature and their configuration, or None when the
        signature is the last applied one's. Raises :class:`ConfigError`."""
        signature = "\n---\n".join(sorted(object_document(o) for o in objects))
        if signature == self._signature:
            return None
        return signature, config_from_objects(objects, self.load_options, self.files)

    async def _apply(self) -> None:
        objects = self.objects()  # on the loop: the reflectors replace, never mutate, them
        try:
            loaded = await run_paced(functools.partial(self._load, objects))
        except ConfigError as exc:
            if self.config is None and self.files:
                raise  # the files are wrong: nothing to serve, say so at startup
            logger.error("configuration from the API refused, keeping the last good one:\n%s", exc)
            return
        if loaded is None:
            return
        signature, load = loaded
        self._signature = signature
        for issue in load.skipped:
            logger.error("skipped: %s", issue)
        self.skipped_objects += len({issue.file for issue in load.skipped})
        self.loads += 1
        self.config = load.config
        result = self.on_config(load.config)
        if isinstance(result, Awaitable):
            await result

    async def run(self) -> None:
        """List and watch until cancelled: the first configuration once every kind is
        listed, then one per throttled batch of changes."""
        client = self.connection.client()
        namespaces: Sequence[str | None] = self.namespaces or (None,)
        self.reflectors = [
            Reflector(client, self.connection, kind, ns, self.label_selector, self._signal)
            for kind in self.kinds
            for ns in (namespaces if kind.namespaced else (None,))
        ]
        tasks = [asyncio.create_task(r.run(), name=f"reflector {r}") for r in self.reflectors]
        try:
            await asyncio.gather(*(r.synced.wait() for r in self.reflectors))
            self._changed.clear()
            await self._apply()
            while True:  # Traefik's throttle: apply, then ignore changes for a while
                await asyncio.sleep(self.throttle)
                await self._changed.wait()
                await asyncio.sleep(_BATCH)  # a burst (a Service and its slice) is one load
                self._changed.clear()
                await self._apply()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
