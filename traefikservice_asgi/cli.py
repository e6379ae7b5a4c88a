"""The ``traefikservice-asgi`` command: ``serve``, ``check`` and ``demo``.

As in uvicorn, the click commands only parse options and call programmatic functions;
``sys.exit`` (through click) lives here and nowhere else.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .config import no_route_message
from .config._duration import parse_duration
from .entrypoint.server import DEFAULT_MAX_HEADER_BYTES
from .exceptions import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from .options import GatewayOptions
from .loadbalancer.mirror_pool import (
    DEFAULT_BUFFER_BUDGET,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TIMEOUT,
    MirrorLimits,
)

__all__ = ["main"]


def _parse_backends(values: tuple[str, ...]) -> dict[str, list[str]]:
    backends: dict[str, list[str]] = {}
    for item in values:
        key, sep, url = item.partition("=")
        if not sep or "/" not in key or ":" not in key or not url:
            raise click.BadParameter(
                f"expected NAMESPACE/NAME:PORT=URL, got {item!r}", param_hint="--backend"
            )
        backends.setdefault(key, []).append(url)
    return backends


def _duration(option: str, value: str) -> float:
    """A Go duration (``60s``, ``1m30s``) or plain seconds (``0.5``)."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} {exc}", param_hint=option) from None
    if seconds < 0:
        raise click.BadParameter(f"{value!r} must not be negative", param_hint=option)
    return seconds


def _fail(exc: ConfigError) -> NoReturn:
    """Every error, then how many: the same for ``check`` and ``serve``."""
    for issue in exc.issues:
        click.echo(f"error: {issue}", err=True)
    click.echo(f"{len(exc.issues)} error(s)", err=True)
    sys.exit(1)


def _left_out(skipped: tuple[ConfigIssue, ...]) -> str:
    """``"left out: 2 resource(s), 3 route(s)"``: what the issues of ``skipped`` name
    (a route, ``spec.routes[N]``, or else a whole resource)."""
    resources: set[tuple[str | None, str | None]] = set()
    routes: set[tuple[str | None, str | None, str]] = set()
    for issue in skipped:
        match = _ROUTE.match(issue.path or "")
        if match is None:
            resources.add((issue.file, issue.resource))
        else:
            routes.add((issue.file, issue.resource, match.group()))
    return f"left out: {len(resources)} resource(s), {len(routes)} route(s)"


_ROUTE = re.compile(r"spec\.routes\[\d+\]")

_CONTEXT = {"help_option_names": ["-h", "--help"]}
_paths = click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
_backend = click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="NS/NAME:PORT=URL",
    help="Where a Kubernetes Service reference goes, e.g. default/app-v1:80=http://127.0.0.1:9001 "
    "(repeat for more; twice for the same key makes a servers load balancer).",
)
_cross = click.option(
    "--allow-cross-namespace",
    is_flag=True,
    help="Allow references to services in other namespaces (off by default, as in Traefik).",
)
_cluster_dns = click.option(
    "--no-cluster-dns",
    "no_cluster_dns",
    is_flag=True,
    help="Make a Service reference with no --backend, Endpoints or ExternalName an error, "
    "instead of using its in-cluster DNS name (name.namespace.svc), which resolves only "
    "inside a Kubernetes cluster.",
)

_external = click.option(
    "--allow-external-name-services",
    is_flag=True,
    help="Allow routes to ExternalName Services (off by default, as in Traefik).",
)
_ingress_class = click.option(
    "--ingress-class",
    default="",
    metavar="NAME",
    help="Serve only IngressRoutes of this class (Traefik's ingressClass); by default "
    "those without a class or of class traefik.",
)
_skip = click.option(
    "--skip-invalid",
    is_flag=True,
    help="Leave out each resource or route with a problem (and what names one left out), "
    "reported with its location, and load the rest, as Traefik's kubernetesCRD provider "
    "does; by default such a configuration is refused (--kubernetes always skips).",
)


@click.group(context_settings=_CONTEXT)
@click.version_option(package_name="traefikservice-asgi")
def main() -> None:
    """Traefik's TraefikService (canary, sticky, mirroring) as an ASGI gateway."""


@main.command()
@_paths
@_backend
@_cross
@_external
@_ingress_class
@_cluster_dns
@_skip
def check(
    paths: tuple[str, ...],
    backends: tuple[str, ...],
    allow_cross_namespace: bool,
    allow_external_name_services: bool,
    ingress_class: str,
    no_cluster_dns: bool,
    skip_invalid: bool,
) -> None:
    """Validate YAML files or folders; print the routes and each service's tree.

    With --skip-invalid, each problem of what was left out is printed as a warning, then
    how many resources and routes were left out, then what loads."""
    from ._describe import describe
    from .options import GatewayOptions

    try:
        config = GatewayOptions(
            backends=_parse_backends(backends),
            allow_cross_namespace=allow_cross_namespace,
            allow_external_name_services=allow_external_name_services,
            ingress_class=ingress_class,
            cluster_dns=not no_cluster_dns,
            skip_invalid=skip_invalid,
        ).load(paths)
    except ConfigError as exc:
        _fail(exc)
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    for issue in config.skipped:
        click.echo(f"warning: skipped: {issue}", err=True)
    if config.skipped:
        click.echo(f"{_left_out(config.skipped)}, as Traefik would; loading the rest", err=True)
    if not config.routes:  # `serve` would answer 404 to everything
        why = no_route_message(paths)
        if config.skipped:
            why = f"every route was left out (the warnings above say why): {why}"
        _fail(ConfigError([ConfigIssue(why)]))
    click.echo(describe(config))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@_backend
@_cross
@_external
@_ingress_class
@_cluster_dns
@_skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--forwarded-trusted-ip",
    "trusted_ips",
    multiple=True,
    metavar="CIDR",
    help="Keep X-Forwarded-* headers from these peers (Traefik's forwardedHeaders.trustedIPs).",
)
@click.option(
    "--forwarded-insecure",
    is_flag=True,
    help="Keep X-Forwarded-* headers from every peer (Traefik's forwardedHeaders.insecure).",
)
@click.option(
    "--mirror-max-in-flight",
    default=DEFAULT_MAX_IN_FLIGHT,
    show_default=True,
    type=click.IntRange(min=1),
    help="Mirror copies in flight at most; more are dropped and counted.",
)
@click.option(
    "--mirror-buffer-budget",
    default=DEFAULT_BUFFER_BUDGET,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bytes of request bodies held for mirror copies, all copies together.",
)
@click.option(
    "--mirror-timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a mirror copy may take before it is cut off.",
)
@click.option(
    "--max-header-bytes",
    default=DEFAULT_MAX_HEADER_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bytes of request line and headers at most; more is answered 431 (Traefik's "
    "maxHeaderBytes).",
)
@click.option(
    "--read-timeout",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Time to read a request, head and body (respondingTimeouts.readTimeout; 0 = none).",
)
@click.option(
    "--write-timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Time to write a response (respondingTimeouts.writeTimeout; 0 = none).",
)
@click.option(
    "--idle-timeout",
    default="180s",
    show_default=True,
    metavar="DURATION",
    help="Keep-alive wait between requests (respondingTimeouts.idleTimeout).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes; each keeps its own balancer state, as Traefik replicas do.",
)
@click.option(
    "--watch/--no-watch",
    default=True,
    show_default=True,
    help="Reload the configuration when its files or folders change (SIGHUP always reloads).",
)
@click.option(
    "--throttle",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between two reloads at least (Traefik's providersThrottleDuration).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request as Traefik's access log does; off by default, as in Traefik.",
)
@click.option(
    "--access-log-format",
    default="common",
    show_default=True,
    type=click.Choice(["common", "json"]),
    help="Traefik's access log format.",
)
@click.option(
    "--access-log-file",
    default=None,
    help="Write the access log to this file (default: standard output).",
)
@click.option(
    "--admin-port",
    default=None,
    type=int,
    help="Serve /metrics (Traefik's Prometheus metrics), /ping and /api/* on this port; "
    "off by default.",
)
@click.option(
    "--admin-host", default="127.0.0.1", show_default=True, help="Address of the admin port."
)
@click.option(
    "--entry-point-name",
    default="web",
    show_default=True,
    help="The entrypoint label of the gateway's traffic in the metrics and access log.",
)
@click.option(
    "--metrics-routers/--no-metrics-routers",
    default=False,
    show_default=True,
    help="Also record Traefik's router metrics (addRoutersLabels).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--kubernetes",
    is_flag=True,
    help="Take the configuration from the Kubernetes API and watch it (Traefik's "
    "kubernetesCRD provider); in-cluster by default.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False),
    help="Connect as this kubeconfig's current context.",
)
@click.option("--kubernetes-endpoint", metavar="URL", help="The API server (Traefik's endpoint).")
@click.option(
    "--kubernetes-token-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A bearer token file, read on every connection (Traefik's token).",
)
@click.option(
    "--kubernetes-ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="The API server's CA (Traefik's certAuthFilePath).",
)
@click.option(
    "--kubernetes-namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="Watch only this namespace (repeat for more; default: all).",
)
@click.option(
    "--kubernetes-label-selector",
    "label_selector",
    default="",
    metavar="SELECTOR",
    help="Serve only the Traefik resources with these labels (Traefik's labelSelector).",
)
@click.option(
    "--kubernetes-throttle",
    default="2s",
    show_default=True,
    metavar="DURATION",
    help="Least time between two configurations (Traefik's providersThrottleDuration).",
)
def serve(
    paths: tuple[str, ...],
    backends: tuple[str, ...],
    allow_cross_namespace: bool,
    allow_external_name_services: bool,
    ingress_class: str,
    no_cluster_dns: bool,
    skip_invalid: bool,
    host: str,
    port: int,
    trusted_ips: tuple[str, ...],
    forwarded_insecure: bool,
    mirror_max_in_flight: int,
    mirror_buffer_budget: int,
    mirror_timeout: float,
    max_header_bytes: int,
    read_timeout: str,
    write_timeout: str,
    idle_timeout: str,
    workers: int,
    watch: bool,
    throttle: float,
    access_log: bool,
    access_log_format: str,
    access_log_file: str | None,
    admin_port: int | None,
    admin_host: str,
    entry_point_name: str,
    metrics_routers: bool,
    log_level: str,
    kubernetes: bool,
    kubeconfig: str | None,
    kubernetes_endpoint: str | None,
    kubernetes_token_file: str | None,
    kubernetes_ca_file: str | None,
    namespaces: tuple[str, ...],
    label_selector: str,
    kubernetes_throttle: str,
) -> None:
    """Run the gateway under uvicorn, on YAML files or folders or (--kubernetes) on the
    Kubernetes API."""
    from .entrypoint.server import RespondingTimeouts
    from .observability import ObservabilityOptions
    from .options import GatewayOptions
    from .serve import run

    timeouts = RespondingTimeouts(
        read=_duration("--read-timeout", read_timeout),
        write=_duration("--write-timeout", write_timeout),
        idle=_duration("--idle-timeout", idle_timeout),
    )
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    options = GatewayOptions(
        backends=_parse_backends(backends),
        allow_cross_namespace=allow_cross_namespace,
        allow_external_name_services=allow_external_name_services,
        ingress_class=ingress_class,
        cluster_dns=not no_cluster_dns,
        skip_invalid=skip_invalid,
        forwarded_trusted_ips=trusted_ips,
        forwarded_insecure=forwarded_insecure,
        mirror_limits=MirrorLimits(
            max_in_flight=mirror_max_in_flight,
            buffer_budget=mirror_buffer_budget,
            timeout=mirror_timeout,
        ),
        watch=watch,
        throttle=throttle,
        observability=ObservabilityOptions(
            metrics=admin_port is not None,
            entry_point=entry_point_name,
            add_routers_labels=metrics_routers,
            access_log=access_log,
            access_log_format=access_log_format,
            access_log_file=access_log_file,
        ),
    )
    if kubernetes:
        _serve_kubernetes(
            paths,
            options,
            workers=workers,
            kubeconfig=kubeconfig,
            endpoint=kubernetes_endpoint,
            token_file=kubernetes_token_file,
            ca_file=kubernetes_ca_file,
            namespaces=namespaces,
            label_selector=label_selector,
            throttle=_duration("--kubernetes-throttle", kubernetes_throttle),
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            max_header_bytes=max_header_bytes,
            timeouts=timeouts,
            admin_port=admin_port,
            admin_host=admin_host,
        )
        return
    if not paths:
        raise click.UsageError("give YAML files or folders, or --kubernetes")
    try:
        run(
            paths,
            options,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            max_header_bytes=max_header_bytes,
            timeouts=timeouts,
            admin_port=admin_port,
            admin_host=admin_host,
        )
    except ConfigError as exc:
        _fail(exc)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    except RuntimeError as exc:  # uvicorn did not start (the port is taken, ...)
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)


def _serve_kubernetes(
    paths: tuple[str, ...],
    options: GatewayOptions,
    *,
    workers: int,
    kubeconfig: str | None,
    endpoint: str | None,
    token_file: str | None,
    ca_file: str | None,
    **keywords: Any,
) -> None:
    from pathlib import Path

    from .providers.kubernetes import Connection
    from .serve import run_kubernetes

    if workers > 1:
        raise click.UsageError("--kubernetes runs one worker: scale with replicas")
    try:
        if endpoint:
            connection = Connection(
                server=endpoint.rstrip("/"),
                token_file=Path(token_file) if token_file else None,
                ca_file=Path(ca_file) if ca_file else None,
            )
        elif kubeconfig:
            connection = Connection.from_kubeconfig(Path(kubeconfig))
        else:
            connection = Connection.in_cluster()
    except (ValueError, OSError, KeyError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        run_kubernetes(connection, options, paths=paths, **keywords)
    except ConfigError as exc:
        _fail(exc)
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)


@main.command()
@click.option(
    "--requests",
    "count",
    default=9,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Requests per experiment to the weighted and the mirroring host.",
)
def demo(count: int) -> None:
    """Replay the walkthrough: two local backends, the gateway, three experiments."""
    import asyncio

    from .demo import run_demo

    sys.exit(asyncio.run(run_demo(count, echo=click.echo)))
