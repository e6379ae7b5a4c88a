"""The builder decides which mirrors may leave their copies' answers to the transport."""

from __future__ import annotations

import random

import pytest

from traefikservice_asgi import load_config_text
from traefikservice_asgi.builder import build_runtime
from traefikservice_asgi.loadbalancer.mirror import Mirroring
from traefikservice_asgi.loadbalancer.wrr import WeightedRoundRobin
from traefikservice_asgi.options import GatewayOptions

BACKENDS = {
    "default/main:80": "http://127.0.0.1:9001",
    "default/a:80": ["http://127.0.0.1:9002", "http://127.0.0.1:9003"],
    "default/b:80": "http://127.0.0.1:9004",
    # One Service per strategy: all references to one Service share one definition.
    "default/h:80": ["http://127.0.0.1:9005", "http://127.0.0.1:9006"],
    "default/p:80": ["http://127.0.0.1:9007", "http://127.0.0.1:9008"],
    "default/l:80": ["http://127.0.0.1:9009", "http://127.0.0.1:9010"],
}

# TraefikServices a mirror can point at, beside the mirroring itself.
SERVICES = """
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: weighted, namespace: default}
spec:
  weighted:
    services: [{name: a, port: 80, weight: 1}, {name: b, port: 80, weight: 2}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: weighted-p2c, namespace: default}
spec:
  weighted:
    services: [{name: p, port: 80, strategy: p2c}, {name: b, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: hrw, namespace: default}
spec:
  highestRandomWeight:
    services: [{name: a, port: 80}, {name: b, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: failover, namespace: default}
spec:
  failover:
    service: {name: a, port: 80}
    fallback: {name: b, port: 80}
    errors: {status: ["500-599"]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: nested, namespace: default}
spec:
  mirroring:
    name: a
    port: 80
    mirrors: [{name: b, port: 80, percent: 50}]
"""


def mirror_built(mirror: str) -> Mirroring:
    text = f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`x.test`)
      services: [{{name: mirrored, kind: TraefikService}}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: mirrored, namespace: default}}
spec:
  mirroring:
    name: main
    port: 80
    mirrors: [{mirror}]
---
{SERVICES}"""
    config = load_config_text(text, backends=BACKENDS)
    (route,) = build_runtime(config, GatewayOptions(rng=random.Random(0))).routes
    assert isinstance(route.handler, Mirroring)
    return route.handler


@pytest.mark.parametrize(
    ("mirror", "detached"),
    [
        ("{name: b, port: 80, percent: 10}", True),  # one server
        ("{name: a, port: 80, percent: 10}", True),  # wrr over two servers
        ("{name: h, port: 80, strategy: hrw, percent: 10}", True),
        ("{name: weighted, kind: TraefikService, percent: 10}", True),
        ("{name: hrw, kind: TraefikService, percent: 10}", True),
        # These read the answer or count requests until answered: whole exchanges.
        ("{name: p, port: 80, strategy: p2c, percent: 10}", False),
        ("{name: l, port: 80, strategy: leasttime, percent: 10}", False),
        ("{name: weighted-p2c, kind: TraefikService, percent: 10}", False),
        ("{name: failover, kind: TraefikService, percent: 10}", False),
        ("{name: nested, kind: TraefikService, percent: 10}", False),
    ],
)
def test_only_mirrors_whose_tree_ignores_answers_are_detached(mirror: str, detached: bool) -> None:
    (built,) = mirror_built(mirror)._mirrors
    assert built.detached is detached


def test_every_parent_of_one_service_shares_its_servers_balancer() -> None:
    # Traefik's manager builds default-a-80 once; a parent's weight is its own.
    text = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`x.test`)
      services: [{name: a, port: 80}, {name: b, port: 80}]
    - match: Host(`y.test`)
      services: [{name: weighted, kind: TraefikService}]
---
""" + SERVICES.split("---", 1)[0]
    config = load_config_text(text, backends=BACKENDS)
    runtime = build_runtime(config, GatewayOptions(rng=random.Random(0)))
    x, y = runtime.routes
    assert isinstance(x.handler, WeightedRoundRobin)
    assert isinstance(y.handler, WeightedRoundRobin)
    children = [{e.name: e.handler for e in r._heap} for r in (x.handler, y.handler)]
    assert isinstance(children[0]["default-a-80"], WeightedRoundRobin)
    assert children[0]["default-a-80"] is children[1]["default-a-80"]
