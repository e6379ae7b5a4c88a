"""Loaded by the gateway that ``bench/reload.py --trace`` starts (this folder first on
its ``PYTHONPATH``): the time of each reload phase and of each loop-lag sample over
4 ms, written as JSON to ``$RELOAD_TRACE.<pid>`` at exit, for the breakdown the bench
prints. Wraps the phases by name, so it traces a checkout from before pacing too."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from typing import Any

if os.environ.get("RELOAD_TRACE"):
    from traefikservice_asgi import reload as _reload
    from traefikservice_asgi.config import loader as _loader
    from traefikservice_asgi.observability import looplag as _looplag
    from traefikservice_asgi.options import GatewayOptions

    _now = time.perf_counter
    _stalls: list[tuple[float, float]] = []  # (when it ended, how long)
    _phases: list[tuple[str, float, float]] = []  # (name, start, end)
    _tick = _looplag.LoopLag._tick

    def _traced_tick(self: Any) -> None:
        late = self._loop.time() - self._due
        if late > 0.004:
            _stalls.append((_now(), late))
        _tick(self)

    _looplag.LoopLag._tick = _traced_tick  # type: ignore[method-assign]

    def _wrap(owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        def traced(*args: Any, **kwargs: Any) -> Any:
            began = _now()
            try:
                return inner(*args, **kwargs)
            finally:
                _phases.append((name, began, _now()))

        setattr(owner, name, traced)

    for _owner, _name in (
        (_loader, "parse_documents"),
        (_loader, "resolve"),
        (GatewayOptions, "load"),
        (_reload, "summarize"),
        (_reload, "build_runtime"),
    ):
        _wrap(_owner, _name)
    _inner_reload = _reload.Reloader._reload

    async def _traced_reload(self: Any, config: Any, trigger: str) -> Any:
        began = _now()
        try:
            return await _inner_reload(self, config, trigger)
        finally:  # the swap is done when _reload returns
            _phases.append(("reload", began, _now()))

    _reload.Reloader._reload = _traced_reload  # type: ignore[method-assign]

    @atexit.register
    def _dump() -> None:
        path = f"{os.environ['RELOAD_TRACE']}.{os.getpid()}"
        with open(path, "w") as out:
            json.dump({"stalls": _stalls, "phases": _phases, "thread": threading.get_ident()}, out)
