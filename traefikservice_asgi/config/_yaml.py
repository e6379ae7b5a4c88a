"""Multi-document YAML with the line of every value, for errors that point at the line.

PyYAML's composer gives node marks; we construct plain Python values from the nodes and
keep a map from each value's field path (``("spec", "weighted", "services", 1,
"weight")``) to its 1-based line. Duplicate keys are errors (kubectl refuses them too),
merge keys work, and aliases are expanded under a node budget so an alias bomb
("billion laughs") is refused quickly instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ._pacing import checkpoint, release

try:  # the C loader is several times faster on large files
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["Document", "YamlProblem", "parse_documents"]

Path = tuple[str | int, ...]

MAX_NODES = 1_000_000


@dataclass(frozen=True, slots=True)
class YamlProblem:
    message: str
    line: int | None


@dataclass(slots=True)
class Document:
    """One YAML document: its data, where it starts, and the line of each value."""

    data: Any
    line: int
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.line


class OversizedInt:
    """An integer literal too long for any 64-bit integer, kept as text: Python refuses
    to convert one over 4300 digits, and no field accepts it anyway."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"{self.text[:20]}... ({len(self.text)} characters)"


def _construct_int(loader: Any, node: yaml.ScalarNode) -> Any:
    """YAML integers as Go's YAML (and Kubernetes) read them: ``1:30`` is YAML 1.1's
    sexagesimal 90 to PyYAML but a string in YAML 1.2; a literal beyond 64 bits is not
    converted."""
    text = loader.construct_scalar(node)
    if ":" in text:
        return text
    if len(text) > 40:  # sign, underscores and 19 digits (2**63) fit with room to spare
        return OversizedInt(text)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


class _IntLoader(_Loader):
    """The loader with :func:`_construct_int`, leaving PyYAML's own classes untouched."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a node: libyaml's composer asks for each, a point where a reload
        may pause inside a large document's composition (``_pacing.py``)."""
        checkpoint()
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


_IntLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Builder:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.nodes = 0
        self.problems: list[YamlProblem] = []
        self.collections: list[yaml.Node] = []  # of the document being built

    def release(self) -> None:
        """Free the document's nodes a few at a time, each collection emptied (the
        deepest first) before any is dropped, and the constructor's memo of scalar
        nodes (PyYAML's own documents start with a new one): a 1,000-route document
        dropped at once is ~30,000 objects freed in one stretch of C that no other
        thread can interrupt (3-12 ms, ``_pacing.py``)."""
        for node in reversed(self.collections):
            node.value = []
            checkpoint()
        release(self.collections)
        release(self.loader.constructed_objects)

    def build(self, node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
        checkpoint()
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self.collections.append(node)
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    self.problems.append(
                        YamlProblem("mapping keys must be scalars", key_node.start_mark.line + 1)
                    )
                    continue
                if key in result:
                    self.problems.append(
                        YamlProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
                    )
                    continue
                child = (*path, key if isinstance(key, (str, int)) else str(key))
                result[key] = self.build(value_node, child, lines)
            return result
        if isinstance(node, yaml.SequenceNode):
            self.collections.append(node)
            return [self.build(item, (*path, i), lines) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


class _TooLarge(Exception):
    pass


def parse_documents(text: str) -> tuple[list[Document], list[YamlProblem]]:
    """Every document of ``text``; empty documents are dropped. A syntax error stops the
    file (nothing after it can be trusted) and is reported with its line."""
    loader = _IntLoader(text)
    builder = _Builder(loader)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path, int] = {}
            data = builder.build(node, (), lines)
            if data is not None:
                documents.append(Document(data, node.start_mark.line + 1, lines))
            builder.release()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            detail = f"{exc.problem} ({exc.context})"
        builder.problems.append(
            YamlProblem(
                f"YAML syntax error: {detail}; the rest of this file is not read",
                mark.line + 1 if mark else None,
            )
        )
    except yaml.YAMLError as exc:
        builder.problems.append(YamlProblem(f"YAML error: {exc}", None))
    except _TooLarge:
        builder.problems.append(
            YamlProblem(f"document expands to more than {MAX_NODES} nodes (an alias bomb?)", None)
        )
    finally:
        loader.dispose()
    return documents, builder.problems
