"""Located, typed access to the fields of one YAML resource.

Every read names what was wrong and where: the file, the line, the resource
(``TraefikService default/wrr``) and the Kubernetes-style field path
(``spec.weighted.services[1].weight``), so a whole file's problems are reported in one
pass. Messages quote the value as the user wrote it (:func:`show`). An unknown field is
an error with a suggestion when it looks like a typo, as Traefik's strict CRD schemas
refuse it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ..exceptions import ConfigIssue, ConfigWarning
from ._duration import parse_duration
from ._yaml import Document, Path
from .models import Origin

__all__ = ["Reader", "format_path", "show"]


#: Go's ``int`` on the 64-bit platforms Traefik ships for.
INT64_MAX = 2**63 - 1


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def show(value: Any) -> str:
    """A value as the user wrote it, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


class Reader:
    """Reads fields of one resource, reporting problems with file, line and path."""

    def __init__(
        self,
        doc: Document,
        file: str | None,
        resource: str,
        issues: list[ConfigIssue],
        warnings: list[ConfigWarning],
    ) -> None:
        self.doc = doc
        self.file = file
        self.resource = resource
        self.issues = issues
        self.warnings = warnings
        self.failed = False
        self.unbuildable: list[tuple[ConfigIssue, bool]] = []

    def origin(self, path: Path) -> Origin:
        return Origin(self.file, self.doc.line_of(path), self.resource, format_path(path))

    def error(self, path: Path, message: str) -> None:
        self.failed = True
        self.issues.append(
            ConfigIssue(
                message, self.file, self.doc.line_of(path), self.resource, format_path(path) or None
            )
        )

    def cannot_build(self, path: Path, message: str, skipped: bool = False) -> None:
        """What the Kubernetes API accepts and Traefik refuses only for the routers using
        the resource: its provider skips the resource (``skipped``, logged) or building
        the middleware for a router fails (``New`` in ``pkg/middlewares``). Not an error
        of the document: kept in :attr:`unbuildable` for the resolver to refuse a route
        using the resource (Traefik does not serve that router) and to warn where none
        does."""
        issue = ConfigIssue(
            message, self.file, self.doc.line_of(path), self.resource, format_path(path) or None
        )
        self.unbuildable.append((issue, skipped))

    def warn(self, path: Path, message: str) -> None:
        """Something accepted but ignored or deprecated, located like an error."""
        self.warnings.append(
            ConfigWarning(
                message, self.file, self.doc.line_of(path), self.resource, format_path(path) or None
            )
        )

    def mapping(
        self,
        value: Any,
        path: Path,
        known: Iterable[str],
        unsupported: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {show(value)}")
            return None
        known = set(known)
        for key in value:
            if unsupported and key in unsupported:
                self.error(
                    (*path, key), f"not supported by traefikservice-asgi: {unsupported[key]}"
                )
            elif key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.error((*path, key), f"unknown field {show(str(key))}{hint}")
        return value

    def string(
        self,
        m: dict[str, Any],
        path: Path,
        key: str,
        *,
        required: bool = False,
        choices: Iterable[str] | None = None,
    ) -> str | None:
        if key not in m or m[key] is None:
            if required:
                self.error((*path, key), "required field is missing")
            return None
        value = m[key]
        if not isinstance(value, str) or (required and not value):
            self.error((*path, key), f"must be a non-empty string, got {show(value)}")
            return None
        if choices is not None and value not in choices:
            options = ", ".join(choices)
            self.error((*path, key), f"must be one of {options}, got {show(value)}")
            return None
        return value

    def integer(
        self,
        m: dict[str, Any],
        path: Path,
        key: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if key not in m or m[key] is None:
            return None
        value = m[key]
        ok = isinstance(value, int) and not isinstance(value, bool)
        too_big = ok and value > INT64_MAX  # Go's int: a larger number does not unmarshal
        ok = ok and not too_big
        ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
        if not ok:
            bound = "an integer"
            if too_big:
                bound = f"an integer of at most 64 bits ({INT64_MAX})"
            elif minimum is not None and maximum is not None:
                bound = f"an integer from {minimum} to {maximum}"
            elif minimum is not None:
                bound = f"an integer >= {minimum}"
            self.error((*path, key), f"must be {bound}, got {show(value)}")
            return None
        return int(value)

    def boolean(self, m: dict[str, Any], path: Path, key: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.error((*path, key), f"must be true or false, got {show(value)}")
            return default
        return value

    def items(
        self, m: dict[str, Any], path: Path, key: str, *, required: bool = False
    ) -> list[Any]:
        value = m.get(key)
        if value is None:
            if required:
                self.error((*path, key), "required field is missing")
            return []
        if not isinstance(value, list):
            self.error((*path, key), f"must be a list, got {show(value)}")
            return []
        return value

    def strings(self, m: dict[str, Any], path: Path, key: str) -> tuple[str, ...]:
        """``key``'s list of strings (each other item an error at its index)."""
        out = []
        for i, item in enumerate(self.items(m, path, key)):
            if not isinstance(item, str):
                self.error((*path, key, i), f"must be a string, got {show(item)}")
            else:
                out.append(item)
        return tuple(out)

    def duration(self, m: dict[str, Any], path: Path, key: str) -> float | None:
        """A Go duration (``"10s"``, ``"1m30s"``) or bare seconds, in seconds."""
        if m.get(key) is None:
            return None
        try:
            return parse_duration(m[key])
        except ValueError as exc:
            self.error((*path, key), f"{exc}, got {show(m[key])}")
            return None
