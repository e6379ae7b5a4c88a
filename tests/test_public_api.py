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


def test_every_exception_of_the_package_is_in_the_documented_tree() -> None:
    from traefikservice_asgi import exceptions

    doc = exceptions.__doc__ or ""
    for name in exceptions.__all__:
        obj = getattr(exceptions, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, traefikservice_asgi.TraefikServiceError), name
            assert name in doc, name


def test_every_scope_and_message_key_is_namespaced_and_defined_once() -> None:
    from traefikservice_asgi.entrypoint import context

    keys = [getattr(context, n) for n in context.__all__ if n.isupper()]
    assert all(k.startswith("traefikservice_asgi.") for k in keys)
    assert len(set(keys)) == len(keys)
    for path in (ROOT / "traefikservice_asgi").rglob("*.py"):
        if path.name != "context.py":
            assert not any(f'"{k}"' in path.read_text() for k in keys), path
