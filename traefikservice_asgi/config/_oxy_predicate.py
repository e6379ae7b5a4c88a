"""The retry expressions of ``buffering.retryExpression``: vulcand/oxy's buffer
predicates (``oxy/v2/buffer/threshold.go``) in vulcand/predicate's Go-expression
grammar, parsed into an inert tree that the runtime evaluates.

Functions: ``IsNetworkError()`` (the last answer was ``502`` or ``504``),
``Attempts()``, ``ResponseCode()`` (integers) and ``RequestMethod()`` (a string);
operators ``&&``, ``||``, parentheses, and a comparison of a function on the left with
a literal on the right (``==``, ``!=`` for both kinds; ``<``, ``>``, ``<=``, ``>=`` for
integers). Anything else is refused, as oxy refuses it when Traefik builds the
middleware (``!`` too: oxy defines no NOT operator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["And", "Compare", "Expression", "NetworkError", "Or", "PredicateError", "parse"]


class PredicateError(ValueError):
    """The expression oxy would refuse, and why."""


@dataclass(frozen=True, slots=True)
class NetworkError:
    """``IsNetworkError()``."""


@dataclass(frozen=True, slots=True)
class Compare:
    """``<function>() <op> <literal>``: ``function`` is ``Attempts``, ``ResponseCode``
    or ``RequestMethod``."""

    function: str
    op: str
    value: int | str


@dataclass(frozen=True, slots=True)
class And:
    left: Expression
    right: Expression


@dataclass(frozen=True, slots=True)
class Or:
    left: Expression
    right: Expression


Expression = NetworkError | Compare | And | Or

_INT_FUNCTIONS = ("Attempts", "ResponseCode")
_FUNCTIONS = ("IsNetworkError", "RequestMethod", *_INT_FUNCTIONS)
_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|,)|(?P<int>[0-9]+)"
    r'|(?P<str>"(?:[^"\\]|\\.)*")|(?P<name>[A-Za-z_][A-Za-z_0-9]*))'
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise PredicateError(f"unexpected {text[position:].strip()[:10]!r}")
        kind = found.lastgroup or ""
        out.append((kind, found.group(kind)))
        position = found.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, value: str) -> None:
        if self.peek()[1] != value:
            raise PredicateError(f"expected {value!r}, got {self.peek()[1] or 'the end'!r}")
        self.i += 1

    def parse(self) -> Expression:
        if not self.tokens:
            raise PredicateError("empty expression")
        value = self.logical("||")
        if self.peek()[0] != "end":
            raise PredicateError(f"unexpected {self.peek()[1]!r}")
        return _predicate(value)

    def logical(self, op: str) -> object:
        left = self.logical("&&") if op == "||" else self.comparison()
        while self.peek() == ("op", op):
            self.i += 1
            right = self.logical("&&") if op == "||" else self.comparison()
            pair = (_predicate(left), _predicate(right))
            left = Or(*pair) if op == "||" else And(*pair)
        return left

    def comparison(self) -> object:
        left = self.primary()
        kind, op = self.peek()
        if kind == "op" and op in ("==", "!=", "<", ">", "<=", ">="):
            self.i += 1
            right = self.primary()
            return _compare(left, op, right)
        return left

    def primary(self) -> object:
        kind, value = self.peek()
        self.i += 1
        if (kind, value) == ("op", "("):
            inner = self.logical("||")
            self.take(")")
            return inner
        if kind == "int":
            return int(value)
        if kind == "str":
            return value[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        if kind == "name":
            if value not in _FUNCTIONS:
                raise PredicateError(f"unsupported function: {value}")
            self.take("(")
            self.take(")")
            return NetworkError() if value == "IsNetworkError" else ("function", value)
        if value == "!":
            raise PredicateError("unsupported operator: !")
        raise PredicateError(f"unexpected {value or 'the end'!r}")


def _predicate(value: object) -> Expression:
    if isinstance(value, (NetworkError, Compare, And, Or)):
        return value
    raise PredicateError(f"expected predicate, got {_describe(value)}")


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return f"{value[1]}()"
    return repr(value)


def _compare(left: object, op: str, right: object) -> Compare:
    if not (isinstance(left, tuple) and left[0] == "function"):
        raise PredicateError(f"unsupported argument: {_describe(left)} on the left of {op}")
    function = left[1]
    if function in _INT_FUNCTIONS:
        if isinstance(right, bool) or not isinstance(right, int):
            raise PredicateError(f"expected int, got {_describe(right)}")
        return Compare(function, op, right)
    if op not in ("==", "!="):
        raise PredicateError(f"unsupported argument: {function}() with {op}")
    if not isinstance(right, str):
        raise PredicateError(f"expected string, got {_describe(right)}")
    return Compare(function, op, right)


def parse(text: str) -> Expression:
    """The tree of ``text``; :class:`PredicateError` where oxy refuses it."""
    return _Parser(text).parse()
