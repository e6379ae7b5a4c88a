"""The public API is small, sorted and importable; shipped copies of the blog YAML agree."""

from __future__ import annotations

from pathlib import Path

import traefikservice_asgi

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_every_name_exists() -> None:
    names = traefikservice_asgi.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(traefikservice_asgi, name), name


def test_every_exception_derives_from_one_base() -> None:
    for exc in (traefikservice_asgi.ConfigError, traefikservice_asgi.RuleError):
        assert issubclass(exc, traefikservice_asgi.TraefikServiceError)


def test_packaged_walkthrough_yaml_equals_the_example_folders() -> None:
    packaged = ROOT / "traefikservice_asgi" / "_blog"
    example = ROOT / "examples" / "blog"
    names = sorted(p.name for p in packaged.glob("*.yaml"))
    assert len(names) == 5
    for name in names:
        assert (packaged / name).read_bytes() == (example / name).read_bytes(), name
