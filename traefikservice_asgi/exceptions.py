"""The package's exceptions: one base class, raised only by library code.

```
TraefikServiceError
├── ConfigError            (every problem of one load, each a ConfigIssue with file,
│                           line, resource, path)
├── RuleError              (a bad router `match` rule, with the position of the fault)
├── HealthCheckNotEnabled  (also a ValueError: a status updater registered on a balancer
│                           built without a health check, as Traefik refuses it)
└── UpstreamAborted        (the backend failed after the response had started)
```

A :class:`ConfigWarning` (something accepted but ignored or deprecated, as Traefik logs
it) is located like a :class:`ConfigIssue` and printed the same way; it is no exception:
the loaded ``Config.warnings`` lists them.

Runtime failures while proxying (a backend refusing connections, a timeout) are not
exceptions for the caller: they become the responses Traefik would send (502, 504, ...).
The one exception is a failure after the answer has started: nothing can be sent
instead any more, so :class:`UpstreamAborted` reaches the ASGI server, which aborts the
client's connection (the client sees an incomplete response, as with Traefik).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "ConfigWarning",
    "HealthCheckNotEnabled",
    "RuleError",
    "TraefikServiceError",
    "UpstreamAborted",
]


class TraefikServiceError(Exception):
    """Base class of every exception this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in the configuration, located as precisely as the YAML allows.

    ``str(issue)`` reads ``routes.yaml:14: TraefikService default/wrr:
    spec.weighted.services[1].weight: must be an integer >= 0, got -2``; parts that are
    unknown (a problem with no file, or not tied to one resource) are left out.
    """

    message: str
    file: str | None = None
    line: int | None = None
    resource: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        if self.resource:
            parts.append(self.resource)
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class ConfigWarning(ConfigIssue):
    """Something in the configuration that is accepted but ignored or deprecated.

    Located and printed as a :class:`ConfigIssue` (``str(warning)`` reads
    ``routes.yaml:9: IngressRoute default/r: spec.tls: ignored: ...``); it does not fail
    the load, and is never raised: ``Config.warnings`` lists them in reading order.
    """


class ConfigError(TraefikServiceError):
    """The configuration is invalid; ``issues`` lists every problem found in one load.

    All problems are collected before raising, so a user fixes a file in one pass
    instead of one error per run.
    """

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class RuleError(TraefikServiceError):
    """A router rule that does not parse or names an unknown matcher.

    ``position`` is the 0-based character offset of the fault in ``rule``; the message
    shows the rule with a caret under that position, as a compiler would.
    """

    def __init__(self, message: str, rule: str, position: int) -> None:
        self.reason = message
        self.rule = rule
        self.position = max(0, min(position, len(rule)))
        super().__init__(f"{message}\n    {rule}\n    {' ' * self.position}^")


class HealthCheckNotEnabled(TraefikServiceError, ValueError):
    """A status updater was registered on a balancer built without a health check."""


class UpstreamAborted(TraefikServiceError):
    """The backend failed after the response had started; the client connection is
    aborted so the client sees an incomplete response, not a silently truncated one."""
