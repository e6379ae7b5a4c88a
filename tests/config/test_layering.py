"""The configuration layer is inert data: it imports nothing from the runtime.

``traefikservice_asgi.config`` may import the standard library, PyYAML, itself, the rule
compiler (``rules``, a leaf) and the package's exceptions; the runtime (``loadbalancer``,
``proxy``, ``builder``, ``middleware``...) imports from it, never the other way round.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = "traefikservice_asgi"
# Read as text, not imported: a runtime import would often be a circular one, which
# would break the import before the guard could name it.
CONFIG = Path(__file__).resolve().parents[2] / PACKAGE / "config"
ALLOWED_INSIDE = ("config", "rules", "exceptions")
ALLOWED_OUTSIDE = {"yaml"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, absolute, with its line."""
    relative = path.relative_to(CONFIG.parent).with_suffix("")
    here = [PACKAGE, *relative.parts]
    if here[-1] == "__init__":
        here.pop()
    else:
        here.pop()  # a module's package
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:  # `from .. import proxy`: the names are modules
                found += [(node.lineno, ".".join([*base, a.name])) for a in node.names]
    return found


def _forbidden(name: str) -> bool:
    top, _, rest = name.partition(".")
    if top == PACKAGE:
        return rest.split(".")[0] not in ALLOWED_INSIDE
    return top not in sys.stdlib_module_names and top not in ALLOWED_OUTSIDE


@pytest.mark.parametrize(
    "path", sorted(CONFIG.rglob("*.py")), ids=lambda p: str(p.relative_to(CONFIG))
)
def test_config_imports_no_runtime_module(path: Path) -> None:
    bad = [f"line {line}: {name}" for line, name in _imports(path) if _forbidden(name)]
    assert bad == []


def test_the_guard_resolves_relative_imports_and_sees_a_runtime_one(tmp_path: Path) -> None:
    assert _forbidden("traefikservice_asgi.loadbalancer.sticky")
    assert _forbidden("httpx")
    assert not _forbidden("traefikservice_asgi.rules")
    assert not _forbidden("traefikservice_asgi.exceptions")
    crd = sorted(name for _, name in _imports(CONFIG / "crd" / "ingressroute.py"))
    assert "traefikservice_asgi.rules" in crd and "traefikservice_asgi.config.models" in crd
