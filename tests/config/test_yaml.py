"""YAML documents with their lines: syntax errors, duplicate keys and alias bombs refused."""

from __future__ import annotations

from tests.support.config import errors


def test_yaml_syntax_error_reports_its_line() -> None:
    (message,) = errors("apiVersion: v1\nkind: Service\nmetadata: {name: x\n")
    assert message.startswith("routes.yaml:4: YAML syntax error:")


def test_duplicate_keys_are_errors() -> None:
    (message,) = errors("apiVersion: v1\nkind: Service\nkind: Service\nmetadata: {name: x}\n")
    assert message == "routes.yaml:3: duplicate key 'kind'"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(
            f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    (message,) = errors("\n".join(lines))
    assert "alias bomb" in message
