"""``serve``'s process settings (the command itself: tests/test_cli.py)."""

from __future__ import annotations

import gc

from traefikservice_asgi.serve import YOUNG_COLLECTION_THRESHOLD, _freeze_startup_objects


def test_serve_makes_young_collections_rare_and_keeps_the_older_generations() -> None:
    """The requests in flight are the young objects each young collection walks: with
    CPython's 700, 64 connections cost ``serve`` a tenth of its instructions per request
    (bench/README.md); ``serve`` raises that threshold only, after freezing startup."""
    before = gc.get_threshold()
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
