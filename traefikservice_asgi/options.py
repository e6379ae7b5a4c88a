"""The gateway's options, spelled once: :class:`GatewayOptions`.

The middleware, :func:`~traefikservice_asgi.create_app`, :mod:`~traefikservice_asgi.serve`
and the ``serve`` command all take this one frozen object. The middleware and
``create_app`` also accept its fields as keyword arguments (Starlette's
``add_middleware`` passes keywords): :class:`OptionKeywords` types them for mypy, and a
test keeps its keys and the dataclass's fields the same.

The options that survive a trip through JSON (all but ``client`` and ``rng``) travel to
uvicorn workers that way (:meth:`GatewayOptions.to_json`).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from .config import Config, ConfigSource, load_config
from .loadbalancer.mirror_pool import MirrorLimits
from .middlewares.plugin import plugin_problem
from .observability.options import ObservabilityOptions

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

__all__ = ["GatewayOptions", "OptionKeywords"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayOptions:
    """How the gateway resolves, trusts, mirrors and connects; every field has Traefik's
    default (or, for the mirror limits, ours).

    ``backends`` maps ``"namespace/name:port"`` to a server URL (or several, a servers
    load balancer); ``allow_cross_namespace`` lets references cross namespaces, as
    Traefik's ``allowCrossNamespace``; ``allow_external_name_services`` lets routes reach
    ``type: ExternalName`` Services, as its ``allowExternalNameServices`` (off by
    default: such a Service may point anywhere); ``ingress_class`` serves only the
    IngressRoutes of that class, as its ``ingressClass``. ``cluster_dns=False`` makes a
    Service reference with no backends entry, Endpoints or ExternalName an error instead
    of the in-cluster DNS name ``http://name.ns.svc:port`` (which resolves only inside a
    cluster). ``skip_invalid`` loads as Traefik's kubernetesCRD provider does: a
    resource or route with a problem is left out and logged at error level
    (``Config.skipped``), the rest served; by default the load is refused.
    ``forwarded_trusted_ips`` (IPs or CIDRs) and
    ``forwarded_insecure`` say whose ``X-Forwarded-*`` headers are kept, as Traefik's
    entry point ``forwardedHeaders.trustedIPs``/``insecure`` (by default nobody's).
    ``mirror_limits`` bounds mirror copies. ``client`` is an ``httpx.AsyncClient`` to use
    instead of the gateway's own (it is not closed by the gateway). ``rng`` seeds the
    order in which children are added to balancers, which Traefik randomises (it decides
    only ties, e.g. which of two equal-weight children goes first). ``watch`` reloads the
    configuration files when they change (from the lifespan's startup to its shutdown),
    at most once every ``throttle`` seconds (Traefik's ``providersThrottleDuration``).
    """

    backends: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    allow_cross_namespace: bool = False
    allow_external_name_services: bool = False
    ingress_class: str = ""
    cluster_dns: bool = True
    skip_invalid: bool = False
    forwarded_trusted_ips: Sequence[str] = ()
    forwarded_insecure: bool = False
    mirror_limits: MirrorLimits = field(default_factory=MirrorLimits)
    client: httpx.AsyncClient | None = None
    rng: random.Random | None = None
    watch: bool = False
    throttle: float = 2.0
    observability: ObservabilityOptions = field(default_factory=ObservabilityOptions)

    def __post_init__(self) -> None:
        # Normalised, so that options equal after a trip through JSON compare equal.
        backends = {
            key: (urls,) if isinstance(urls, str) else tuple(urls)
            for key, urls in self.backends.items()
        }
        object.__setattr__(self, "backends", backends)
        if isinstance(self.forwarded_trusted_ips, str):
            raise TypeError("forwarded_trusted_ips must be a sequence of IPs or CIDRs, not a str")
        object.__setattr__(self, "forwarded_trusted_ips", tuple(self.forwarded_trusted_ips))
        if not self.throttle >= 0:
            raise ValueError(f"throttle must be 0 or more seconds, not {self.throttle!r}")

    @classmethod
    def of(
        cls, options: GatewayOptions | None = None, /, **keywords: Unpack[OptionKeywords]
    ) -> GatewayOptions:
        """``options`` (by default, the defaults) with ``keywords`` applied: how the
        middleware takes both. ``backends=None`` and ``mirror_limits=None`` mean the
        defaults, as they always have."""
        base = options if options is not None else cls()
        changes: dict[str, Any] = {
            key: value
            for key, value in keywords.items()
            if value is not None or key not in ("backends", "mirror_limits")
        }
        return dataclasses.replace(base, **changes) if changes else base

    def load(self, source: ConfigSource) -> Config:
        """Load and validate ``source`` with the options that shape a configuration
        (backends, namespaces, ExternalName, ingress class, cluster DNS, skipping), and the
        plugins this process can build: the one place they are passed on, whoever loads
        (middleware, gateway, ``check``, ``serve``)."""
        return load_config(
            source,
            backends=self.backends,
            allow_cross_namespace=self.allow_cross_namespace,
            allow_external_name_services=self.allow_external_name_services,
            ingress_class=self.ingress_class,
            cluster_dns=self.cluster_dns,
            plugins=plugin_problem,
            skip_invalid=self.skip_invalid,
        )

    def to_json(self) -> str:
        """The options as JSON, for a uvicorn worker. Refuses ``client`` and ``rng``,
        which cannot leave this process."""
        if self.client is not None or self.rng is not None:
            raise ValueError("client and rng cannot be sent to another process")
        return json.dumps(
            {
                "backends": {key: list(urls) for key, urls in self.backends.items()},
                "allow_cross_namespace": self.allow_cross_namespace,
                "allow_external_name_services": self.allow_external_name_services,
                "ingress_class": self.ingress_class,
                "cluster_dns": self.cluster_dns,
                "skip_invalid": self.skip_invalid,
                "forwarded_trusted_ips": list(self.forwarded_trusted_ips),
                "forwarded_insecure": self.forwarded_insecure,
                "mirror_limits": dataclasses.asdict(self.mirror_limits),
                "watch": self.watch,
                "throttle": self.throttle,
                "observability": dataclasses.asdict(self.observability),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> GatewayOptions:
        data = json.loads(text)
        data["mirror_limits"] = MirrorLimits(**data["mirror_limits"])
        if "observability" in data:
            data["observability"] = ObservabilityOptions(**data["observability"])
        return cls(**data)


class OptionKeywords(TypedDict, total=False):
    """:class:`GatewayOptions`' fields as keyword arguments (``**options`` of the
    middleware and ``create_app``)."""

    backends: Mapping[str, str | Sequence[str]] | None
    allow_cross_namespace: bool
    allow_external_name_services: bool
    ingress_class: str
    cluster_dns: bool
    skip_invalid: bool
    forwarded_trusted_ips: Sequence[str]
    forwarded_insecure: bool
    mirror_limits: MirrorLimits | None
    client: httpx.AsyncClient | None
    rng: random.Random | None
    watch: bool
    throttle: float
    observability: ObservabilityOptions
