"""The ``plugin`` middleware's spec (``plugin: {<name>: {...}}``), read into an inert
:class:`~..middlewares.Plugin`: the plugin's name and its configuration as the JSON the
API server would store, checked only for what Traefik refuses before the plugin sees it.

Traefik decodes the value into ``map[string]dynamic.PluginConf`` (its provider skips the
Middleware when a plugin's configuration is not a JSON object), and its middleware
builder refuses anything but exactly one named plugin (``findPluginConfig``). What the
configuration means is the plugin's business: any JSON value is kept as it is (its
secret URNs are resolved later, :mod:`..pluginconf`).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from .._fields import Reader, show
from .._yaml import Path
from ..middlewares import Plugin
from ..pluginconf import dumps

__all__ = ["plugin"]


def plugin(r: Reader, value: Any, path: Path) -> Plugin | None:
    if not isinstance(value, dict):
        r.error(
            path, f"must be a mapping of a plugin's name to its configuration, got {show(value)}"
        )
        return None
    if len(value) != 1:
        r.error(
            path,
            f"names {len(value)} plugins: a plugin middleware names exactly one (Traefik: "
            "invalid configuration: no configuration or too many plugin definition)",
        )
        return None
    name, conf = next(iter(value.items()))
    if not isinstance(name, str) or not name:
        r.error(
            (*path, name),
            f"a plugin's name must be a non-empty string, got {show(name)} "
            "(Traefik: missing plugin type)",
        )
        return None
    where = (*path, name)
    if conf is None:
        conf = {}
    if not isinstance(conf, dict):
        r.error(where, f"the plugin's configuration must be a mapping, got {show(conf)}")
        return None
    before = len(r.issues)
    converted = _json(r, conf, where)
    if len(r.issues) > before:
        return None
    return Plugin(name, dumps(converted))


def _json(r: Reader, value: Any, path: Path) -> Any:
    """``value`` as the JSON the API server keeps of YAML: keys as strings (as
    ``sigs.k8s.io/yaml`` writes a number or boolean key), a timestamp as its ISO text;
    what JSON cannot hold is an error."""
    if isinstance(value, dict):
        return {_key(k): _json(r, v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(r, item, (*path, i)) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        r.error(path, f"{value} is not a JSON number (the API server refuses it)")
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    r.error(path, f"{value} is not a JSON value (the API server stores JSON)")
    return None


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)
