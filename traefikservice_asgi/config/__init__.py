"""Load Kubernetes YAML (IngressRoute, TraefikService, ServersTransport, Service,
Endpoints, EndpointSlice, Secret, ConfigMap) into a validated, resolved :class:`Config`,
or raise one :class:`ConfigError` listing every problem with its file, line, resource and
field path.

The layer is inert data: it does no I/O beyond reading the files, needs no event loop,
and imports nothing from the runtime (balancers, proxy, builder); the runtime imports
from it. ``tests/config/test_layering.py`` keeps it that way.

```
loader.py      files/folders -> documents -> Resources -> resolve
_yaml.py       YAML documents with line numbers (duplicate keys and alias bombs refused)
resources.py   the Resources of one load; dispatch by apiVersion/kind
crd/           one reader per kind: ingressroute, traefikservice, serviceref,
               serverstransport, core (Service, Endpoints, EndpointSlice, Secret, ConfigMap)
_fields.py     located, typed field access (the Reader); _duration.py Go durations
models.py      frozen models and Traefik's defaults
resolve.py     references followed, servers found, cycles refused: the service graph
skipping.py    what an invalid resource or route leaves out (Traefik's provider way)
```
"""

from __future__ import annotations

from ..exceptions import ConfigError, ConfigIssue, ConfigWarning
from .loader import ConfigSource, load_config, load_config_text, no_route_message
from .models import (
    DEFAULT_COOKIE_PATH,
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_METHOD,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    DEFAULT_IDLE_CONN_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_IDLE_CONNS_PER_HOST,
    DEFAULT_MAX_REQUEST_BODY_BYTES,
    DEFAULT_MIRROR_BODY,
    DEFAULT_PASS_HOST_HEADER,
    DEFAULT_STRATEGY,
    DEFAULT_WEIGHT,
    Config,
    CookieOptions,
    FailoverService,
    HealthCheck,
    HRWService,
    MirroringService,
    Route,
    ServersService,
    ServersTransport,
    Service,
    WeightedService,
)
from .resolve import normalize

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConfigSource",
    "ConfigWarning",
    "CookieOptions",
    "DEFAULT_COOKIE_PATH",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_HEALTH_CHECK_FOLLOW_REDIRECTS",
    "DEFAULT_HEALTH_CHECK_INTERVAL",
    "DEFAULT_HEALTH_CHECK_METHOD",
    "DEFAULT_HEALTH_CHECK_TIMEOUT",
    "DEFAULT_IDLE_CONN_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_IDLE_CONNS_PER_HOST",
    "DEFAULT_MAX_REQUEST_BODY_BYTES",
    "DEFAULT_MIRROR_BODY",
    "DEFAULT_PASS_HOST_HEADER",
    "DEFAULT_STRATEGY",
    "DEFAULT_WEIGHT",
    "FailoverService",
    "HRWService",
    "HealthCheck",
    "MirroringService",
    "Route",
    "ServersService",
    "ServersTransport",
    "Service",
    "WeightedService",
    "load_config",
    "load_config_text",
    "no_route_message",
    "normalize",
]
