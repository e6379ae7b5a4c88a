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
