"""Files and folders -> YAML documents -> :class:`~.resources.Resources` -> a resolved
:class:`~.models.Config`, or one :class:`ConfigError` listing every problem with its
file, line, resource and field path, in reading order.

Problems with the files themselves (missing, unreadable, YAML syntax) come first: a
syntax error stops its file, so errors about what the rest of it defined ("TraefikService
... not found") may follow from it, and its cause should be read first. A file with no
document is a warning. A load with no route at all is valid here;
:func:`~traefikservice_asgi.create_app` and the CLI refuse it (:func:`no_route_message`),
the middleware logs it."""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, ConfigIssue, ConfigWarning
from ._pacing import checkpoint, release
from ._yaml import Document, parse_documents
from .models import Config
from .resolve import PluginLookup, resolve
from .resources import Resources, parse_document
from .skipping import keep_routes, load_skipping, route_lines

__all__ = [
    "MAX_FILE_BYTES",
    "ConfigSource",
    "load_config",
    "load_config_text",
    "load_config_texts",
    "no_route_message",
    "read_config_files",
]

ConfigSource = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]

_SUFFIXES = (".yaml", ".yml", ".json")

# Kubernetes itself refuses objects over ~1.5 MiB (etcd's limit); a file of manifests
# many times that is a mistake, and parsing it would take seconds and hundreds of MiB.
MAX_FILE_BYTES = 10 * 1024 * 1024


def _where(paths: ConfigSource) -> str:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return ", ".join(str(p) for p in items) or "no path"


def no_route_message(where: ConfigSource) -> str:
    """What a load of ``where`` without any route means, for the warning and the error
    of ``create_app`` and the CLI."""
    return (
        f"no IngressRoute with a route found in {_where(where)}: no request would be routed (a standalone gateway, like "
        "Traefik with no router, answers 404 page not found to every request); add an "
        "IngressRoute (apiVersion: traefik.io/v1alpha1), see examples/blog/"
    )


def _files(paths: ConfigSource, issues: list[ConfigIssue]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            # Like `kubectl apply -f DIR`: the folder's YAML/JSON files, not recursive.
            found = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
            if not found:
                issues.append(ConfigIssue("no .yaml, .yml or .json file in this folder", str(path)))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            issues.append(ConfigIssue("no such file or folder", str(path)))
    return files


def _finish(
    res: Resources,
    issues: list[ConfigIssue],
    backends: Mapping[str, str | Sequence[str]] | None,
    allow_cross_namespace: bool,
    allow_external_name_services: bool,
    ingress_class: str,
    cluster_dns: bool,
    plugins: PluginLookup | None,
) -> Config:
    # The files' own problems (issues so far) first: later errors may follow from them.
    first = sorted(issues, key=lambda i: (i.file or "", i.line or 0))
    config, more = resolve(
        res,
        backends,
        allow_cross_namespace=allow_cross_namespace,
        allow_external_name_services=allow_external_name_services,
        ingress_class=ingress_class,
        cluster_dns=cluster_dns,
        plugins=plugins,
    )
    rest = [*res.issues, *more]
    if first or rest:
        # In reading order, as a compiler lists them; file-less problems first.
        raise ConfigError([*first, *sorted(rest, key=lambda i: (i.file or "", i.line or 0))])
    return config


_EMPTY = "no YAML document in this file (empty, or only comments)"


def _parse_text(text: str, file: str, res: Resources, issues: list[ConfigIssue]) -> None:
    documents, problems = parse_documents(text)
    issues.extend(ConfigIssue(p.message, file, p.line) for p in problems)
    if not documents and not problems:
        res.warnings.append(ConfigWarning(_EMPTY, file))
    documents.reverse()
    while documents:  # each document freed once read, not all in one stretch at the end
        checkpoint()
        doc = documents.pop()
        parse_document(doc, file, res)
        release(doc.lines)


def load_config(
    paths: ConfigSource,
    *,
    backends: Mapping[str, str | Sequence[str]] | None = None,
    allow_cross_namespace: bool = False,
    allow_external_name_services: bool = False,
    ingress_class: str = "",
    cluster_dns: bool = True,
    plugins: PluginLookup | None = None,
    skip_invalid: bool = False,
) -> Config:
    """Load every YAML document of ``paths`` (files or folders, like ``kubectl apply -f``).

    ``backends`` maps ``"namespace/name:port"`` to a server URL (or a list of URLs) and
    takes precedence over Endpoints documents and cluster DNS. As in Traefik's
    Kubernetes CRD provider, ``type: ExternalName`` Services are refused unless
    ``allow_external_name_services``, and only IngressRoutes of ``ingress_class`` are
    served (without one: those with no class or the class ``traefik``).
    ``cluster_dns=False`` makes a Service reference with no backends entry, Endpoints
    or ExternalName an error instead of the in-cluster DNS name (which works only inside
    a cluster). ``plugins`` says what is wrong with the plugin a route's ``plugin``
    middleware names (the gateway passes its registry's; None: not checked). Raises
    :class:`ConfigError` with every problem of every file.

    ``skip_invalid=True`` loads as Traefik's kubernetesCRD provider does: a resource with
    a problem is left out (of an IngressRoute, only the routes the problems lie in), so
    is what then refers to something left out, and the rest loads; ``Config.skipped``
    lists the problems of what was left out. A file that cannot be read or parsed is
    still refused, and so is a load where nothing else is wrong.
    """
    issues: list[ConfigIssue] = []
    res = Resources()
    options = (
        backends,
        allow_cross_namespace,
        allow_external_name_services,
        ingress_class,
        cluster_dns,
        plugins,
    )
    if skip_invalid:
        files = _files(paths, issues)
        named = [(text, str(f)) for f in files if (text := _read(f, issues)) is not None]
        return _load_skipping(named, issues, *options)
    for file in _files(paths, issues):
        text = _read(file, issues)
        if text is not None:
            _parse_text(text, str(file), res, issues)
    return _finish(res, issues, *options)


def _read(file: Path, issues: list[ConfigIssue]) -> str | None:
    """The text of ``file``, or None and why not in ``issues``."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.append(
                ConfigIssue(
                    f"file is {size / 2**20:.1f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB "
                    "a configuration file may have; split it into several files",
                    str(file),
                )
            )
            return None
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(ConfigIssue(f"cannot read: {exc}", str(file)))
        return None


def _load_skipping(
    named: list[tuple[str, str]],
    issues: list[ConfigIssue],
    *options: Any,
) -> Config:
    """:func:`load_config` with ``skip_invalid``: each YAML document is a unit of
    :func:`~.skipping.load_skipping`, found from an issue's file and line (a trimmed
    IngressRoute keeps the lines of its routes). The files' own problems (unreadable,
    YAML syntax) are never skipped: the load is refused with every issue, as without."""
    units: dict[tuple[str, int], Document] = {}
    starts: dict[str, list[int]] = {}
    empty: list[str] = []
    for text, file in named:
        documents, problems = parse_documents(text)
        issues.extend(ConfigIssue(p.message, file, p.line) for p in problems)
        if not documents and not problems:
            empty.append(file)
        units.update(((file, i), doc) for i, doc in enumerate(documents))
        starts[file] = [doc.line for doc in documents]

    def load(kept: Mapping[tuple[str, int], Sequence[int] | None]) -> Config:
        res = Resources()
        res.warnings.extend(ConfigWarning(_EMPTY, file) for file in empty)
        for (file, i), indices in kept.items():
            checkpoint()
            doc = units[(file, i)]
            if indices is not None:
                data, lines = keep_routes(doc.data, indices), route_lines(doc.lines, indices)
                doc = Document(data, doc.line, lines)
            parse_document(doc, file, res)
        return _finish(res, list(issues), *options)

    def unit_of(issue: ConfigIssue) -> tuple[str, int] | None:
        lines = starts.get(issue.file or "")
        if lines is None or issue.line is None:
            return None
        index = bisect.bisect_right(lines, issue.line) - 1
        return (issue.file or "", index) if index >= 0 else None

    if issues:  # nothing is skipped for them: refused with every issue of the files
        load(dict.fromkeys(units))
    config, skipped = load_skipping({k: d.data for k, d in units.items()}, load, unit_of)
    return dataclasses.replace(config, skipped=skipped)


def load_config_text(
    text: str,
    *,
    filename: str = "<string>",
    backends: Mapping[str, str | Sequence[str]] | None = None,
    allow_cross_namespace: bool = False,
    allow_external_name_services: bool = False,
    ingress_class: str = "",
    cluster_dns: bool = True,
    plugins: PluginLookup | None = None,
    skip_invalid: bool = False,
) -> Config:
    """:func:`load_config` for YAML held in a string (tests, generated config)."""
    issues: list[ConfigIssue] = []
    res = Resources()
    options = (
        backends,
        allow_cross_namespace,
        allow_external_name_services,
        ingress_class,
        cluster_dns,
        plugins,
    )
    if len(text) > MAX_FILE_BYTES:
        issues.append(
            ConfigIssue(f"more than {MAX_FILE_BYTES // 2**20} MiB of configuration", filename)
        )
    elif skip_invalid:
        return _load_skipping([(text, filename)], issues, *options)
    else:
        _parse_text(text, filename, res, issues)
    return _finish(res, issues, *options)


def load_config_texts(
    texts: Iterable[tuple[str, str]],
    *,
    backends: Mapping[str, str | Sequence[str]] | None = None,
    allow_cross_namespace: bool = False,
    allow_external_name_services: bool = False,
    ingress_class: str = "",
    cluster_dns: bool = True,
    plugins: PluginLookup | None = None,
) -> Config:
    """:func:`load_config` for several YAML texts, each ``(text, name)``: the name stands
    for the file in every issue (the Kubernetes provider names each API object so)."""
    issues: list[ConfigIssue] = []
    res = Resources()
    for text, name in texts:
        _parse_text(text, name, res, issues)
    return _finish(
        res,
        issues,
        backends,
        allow_cross_namespace,
        allow_external_name_services,
        ingress_class,
        cluster_dns,
        plugins,
    )


def read_config_files(paths: ConfigSource) -> list[tuple[str, str]]:
    """The ``(text, file)`` of every file of ``paths`` (folders as :func:`load_config`
    reads them), for :func:`load_config_texts`; a path that cannot be read raises
    :class:`ConfigError` (validate with :func:`load_config` first for every issue)."""
    issues: list[ConfigIssue] = []
    texts = []
    for file in _files(paths, issues):
        try:
            texts.append((file.read_text(encoding="utf-8"), str(file)))
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(ConfigIssue(f"cannot read: {exc}", str(file)))
    if issues:
        raise ConfigError(issues)
    return texts
