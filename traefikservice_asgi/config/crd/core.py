"""The core Kubernetes kinds a route needs: ``Service``, ``Endpoints``,
``EndpointSlice`` (the servers behind a Service reference, as Traefik's CRD provider
finds them) and ``Secret``/``ConfigMap`` (a ServersTransport's certificates).

They are read leniently: real manifests carry many fields that do not concern routing,
so only the fields used here are checked."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..models import EndpointSet, KubeService, NodeAddresses, ServicePort

__all__ = ["endpoint_slice", "endpoints", "key_values", "kube_service", "node"]


def kube_service(r: Reader, spec: Any, namespace: str, name: str) -> KubeService | None:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        r.error(("spec",), f"must be a mapping, got {show(spec)}")
        return None
    stype = spec.get("type") or "ClusterIP"
    ports: list[ServicePort] = []
    for i, p in enumerate(r.items(spec, ("spec",), "ports")):
        path: Path = ("spec", "ports", i)
        if not isinstance(p, dict):
            r.error(path, f"must be a mapping, got {show(p)}")
            continue
        number = r.integer(p, path, "port", minimum=1, maximum=65535)
        if number is None:
            if "port" not in p:
                r.error((*path, "port"), "required field is missing")
            continue
        pname = p.get("name") or ""
        node_port = r.integer(p, path, "nodePort", minimum=1, maximum=65535)
        ports.append(ServicePort(number, str(pname), p.get("targetPort"), node_port))
    external = spec.get("externalName")
    if stype == "ExternalName" and not isinstance(external, str):
        r.error(("spec", "externalName"), "required for a Service of type ExternalName")
        external = None
    cluster_ip = spec.get("clusterIP")
    if cluster_ip is not None and not isinstance(cluster_ip, str):
        r.error(("spec", "clusterIP"), f"must be an IP address or None, got {show(cluster_ip)}")
        cluster_ip = None
    return KubeService(
        namespace,
        name,
        r.origin(()),
        str(stype),
        tuple(ports),
        external if isinstance(external, str) else None,
        cluster_ip or None,
    )


def node(r: Reader, doc: dict[str, Any], name: str) -> NodeAddresses:
    """A ``Node``: its ``status.addresses`` of type ``InternalIP``, what Traefik's
    ``nodePortLB`` sends to (with the Service port's ``nodePort``)."""
    status = doc.get("status") or {}
    ips: list[str] = []
    if not isinstance(status, dict):
        r.error(("status",), f"must be a mapping, got {show(status)}")
        status = {}
    for i, a in enumerate(r.items(status, ("status",), "addresses")):
        if not isinstance(a, dict):
            r.error(("status", "addresses", i), f"must be a mapping, got {show(a)}")
        elif a.get("type") == "InternalIP":
            address = a.get("address")
            if isinstance(address, str) and address:
                ips.append(address)
            else:
                r.error(
                    ("status", "addresses", i, "address"),
                    f"must be an IP address, got {show(address)}",
                )
    return NodeAddresses(name, tuple(ips), r.origin(()))


def endpoints(r: Reader, doc: dict[str, Any], namespace: str, name: str) -> list[EndpointSet]:
    out: list[EndpointSet] = []
    for i, subset in enumerate(r.items(doc, (), "subsets")):
        path: Path = ("subsets", i)
        if not isinstance(subset, dict):
            r.error(path, f"must be a mapping, got {show(subset)}")
            continue
        addresses = []
        for j, a in enumerate(r.items(subset, path, "addresses")):
            ip = a.get("ip") if isinstance(a, dict) else None
            if not isinstance(ip, str):
                r.error((*path, "addresses", j, "ip"), f"must be an IP address, got {show(ip)}")
                continue
            addresses.append(ip)
        for j, p in enumerate(r.items(subset, path, "ports")):
            ppath = (*path, "ports", j)
            if not isinstance(p, dict):
                r.error(ppath, f"must be a mapping, got {show(p)}")
                continue
            number = r.integer(p, ppath, "port", minimum=1, maximum=65535)
            if number is not None:
                out.append(
                    EndpointSet(
                        namespace,
                        name,
                        str(p.get("name") or ""),
                        number,
                        tuple(addresses),
                        r.origin(ppath),
                    )
                )
    return out


def endpoint_slice(r: Reader, doc: dict[str, Any], namespace: str) -> list[EndpointSet]:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    service = labels.get("kubernetes.io/service-name") if isinstance(labels, dict) else None
    if not isinstance(service, str):
        r.error(
            ("metadata", "labels"),
            'needs the label "kubernetes.io/service-name" naming its Service',
        )
        return []
    addresses: list[str] = []
    fenced: list[str] = []
    for i, e in enumerate(r.items(doc, (), "endpoints")):
        if not isinstance(e, dict):
            r.error(("endpoints", i), f"must be a mapping, got {show(e)}")
            continue
        serving, terminating = _conditions(r, e, ("endpoints", i))
        # Traefik v3 keeps endpoints whose `serving` is not false, whatever `ready` says
        # (`ptr.Deref(endpoint.Conditions.Serving, true)`: an absent one counts as true),
        # and fences the terminating ones (`Fenced: ptr.Deref(...Terminating, false)`).
        if not serving:
            continue
        for j, ip in enumerate(r.items(e, ("endpoints", i), "addresses")):
            if not isinstance(ip, str):
                r.error(("endpoints", i, "addresses", j), f"must be an IP address, got {show(ip)}")
            elif ip not in addresses:  # the first endpoint naming an address decides
                addresses.append(ip)
                if terminating:
                    fenced.append(ip)
    out = []
    for j, p in enumerate(r.items(doc, (), "ports")):
        if not isinstance(p, dict):
            r.error(("ports", j), f"must be a mapping, got {show(p)}")
            continue
        number = r.integer(p, ("ports", j), "port", minimum=1, maximum=65535)
        if number is not None:
            out.append(
                EndpointSet(
                    namespace,
                    service,
                    str(p.get("name") or ""),
                    number,
                    tuple(addresses),
                    r.origin(("ports", j)),
                    tuple(fenced),
                )
            )
    return out


def _conditions(r: Reader, endpoint: dict[str, Any], path: Path) -> tuple[bool, bool]:
    """An endpoint's ``serving`` and ``terminating`` conditions, absent ones as
    Kubernetes' API documents them (serving true, terminating false)."""
    conditions = endpoint.get("conditions") or {}
    if not isinstance(conditions, dict):
        r.error((*path, "conditions"), f"must be a mapping, got {show(conditions)}")
        return True, False
    found = {"serving": True, "terminating": False}
    for key in found:
        value = conditions.get(key)
        if isinstance(value, bool):
            found[key] = value
        elif value is not None:
            r.error((*path, "conditions", key), f"must be true or false, got {show(value)}")
    return found["serving"], found["terminating"]


def key_values(r: Reader, doc: dict[str, Any], *, secret: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    data = doc.get("data") or {}
    if not isinstance(data, dict):
        r.error(("data",), f"must be a mapping, got {show(data)}")
        return out
    for key, value in data.items():
        if not isinstance(value, str):
            r.error(("data", str(key)), f"must be a string, got {show(value)}")
        elif secret:
            try:
                # Go's base64 decoder (the API server's) skips line breaks.
                text = value.replace("\n", "").replace("\r", "")
                out[str(key)] = base64.b64decode(text, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                r.error(("data", str(key)), "must be base64 of UTF-8 text")
        else:
            out[str(key)] = value
    if secret and isinstance(doc.get("stringData"), dict):
        out.update({str(k): str(v) for k, v in doc["stringData"].items()})
    return out
