"""Durations as Traefik reads them: Go duration strings, or integers meaning seconds.

``forwardingTimeouts.dialTimeout: 30s``, ``1m30s``, ``250ms``, ``1.5h``, or ``30`` (an
int-or-string in the CRD, where a bare number counts seconds, as Traefik's
``ptypes.Duration`` does).
"""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; ``ValueError`` with the reason when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s or 1m30s")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError("must be a duration such as 30s or 1m30s")
    text = value.strip()
    if text.isdigit():
        return float(text)
    position = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError("must be a duration such as 30s or 1m30s")
    return total
