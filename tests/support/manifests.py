"""Small manifests several test modules share."""

# A route to a TraefikService mirroring every request of Service `main` to Service `copy`.
MIRROR_100 = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: m, namespace: default}
spec:
  routes:
    - match: Host(`m.test`)
      services: [{name: mirrored, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: mirrored, namespace: default}
spec:
  mirroring:
    name: main
    port: 80
    mirrors: [{name: copy, port: 80, percent: 100}]
"""


def one_route(service: str) -> str:
    """An IngressRoute ``default/r`` with one route to ``service`` (a YAML flow mapping),
    written on line 8."""
    return f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes:
    - match: Host(`x.test`)
      services:
        - {service}
"""


# Service `shop/web`, ports 80 (named http, target 8080) and 8443 (named https-api).
SHOP_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https-api, port: 8443}
---
"""

# An IngressRoute `shop/r` to Service `web`; `%` the port, as written.
SHOP_ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: shop}
spec:
  routes:
    - match: Host(`shop.test`)
      services:
        - {name: web, port: %s}
"""

# Service `default/app` (`%` its clusterIP) with ports http 80 -> 8080 and
# https-api 443 -> 8443, and an EndpointSlice of two addresses.
APP_SERVICE_AND_SLICE = """\
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  clusterIP: %s
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https-api, port: 443, targetPort: 8443}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  namespace: default
  labels: {kubernetes.io/service-name: app}
ports: [{name: http, port: 8080}, {name: https-api, port: 8443}]
endpoints:
  - addresses: [10.0.0.1, 10.0.0.2]
---
"""

# A weighted TraefikService `default/wrr` whose second weight (line 14) is -2.
WRR = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: wrr
  namespace: default
spec:
  weighted:
    services:
      - name: app-v1
        port: 80
        weight: 1
      - name: app-v2
        port: 80
        weight: -2
"""

# TraefikServices `a` -> `b` -> `a`, the second reference on line 14.
CYCLE = """\
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: a, namespace: default}
spec:
  weighted:
    services:
      - {name: b, kind: TraefikService}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: b, namespace: default}
spec:
  mirroring:
    name: a
    kind: TraefikService
"""


# Service `default/web` (port 80 named http) and an EndpointSlice: 10.0.0.1 serving,
# 10.0.0.2 terminating yet still serving (Traefik's fenced server), both on 8080.
WEB_WITH_A_TERMINATING_ENDPOINT = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
ports: [{name: http, port: 8080}]
endpoints:
  - addresses: [10.0.0.1]
  - {addresses: [10.0.0.2], conditions: {serving: true, terminating: true}}
---
"""


# A Middleware with a misspelt field, and an IngressRoute whose route 0 has a negative
# weight and route 2 names that Middleware: skip_invalid leaves out those three and loads
# ok.test and other.test (Service default/app:80). The lines are pinned by tests.
HALF_VALID = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: bad, namespace: default}
spec: {stripPrefix: {prefixs: [/x]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: multi, namespace: default}
spec:
  routes:
    - {match: Host(`weight.test`), services: [{name: app, port: 80, weight: -1}]}
    - {match: Host(`ok.test`), services: [{name: app, port: 80}]}
    - {match: Host(`mw.test`), middlewares: [{name: bad}], services: [{name: app, port: 80}]}
---
kind: IngressRoute
apiVersion: traefik.io/v1alpha1
metadata: {name: other, namespace: default}
spec: {routes: [{match: Host(`other.test`), services: [{name: app, port: 80}]}]}
"""
