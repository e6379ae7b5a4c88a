"""``circuitBreaker.expression``: vulcand/predicate's parser with the functions and
operators oxy's ``cbreaker`` gives it (Traefik 3.7 builds on oxy v2.1.0, predicate
v1.3.0), into an inert tree the runtime evaluates.

The text is a Go expression (Go's ``parser.ParseExpr``: its tokens, its precedence,
``||`` below ``&&`` below the comparisons). predicate then walks it: ``&&`` and ``||``
join predicates; a comparison takes a metric on its left and a constant of the metric's
own type on its right (``NetworkErrorRatio() > 0.5``, ``LatencyAtQuantileMS(50.0) > 100``;
``> 1`` after a ratio is refused, as Go's ``float64GT`` refuses an ``int``); the three
functions are called as Go's reflection calls them (``LatencyAtQuantileMS(50)`` is refused:
an ``int`` is not a ``float64``). Anything else (``!``, arithmetic, an identifier, an unknown
function such as ``RequestThreshold()``, a bare metric) is an error, each worded as
predicate or oxy word it. Written by hand: the language is Go's, the rules are
predicate's reflection, and no Python library has either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "And",
    "Compare",
    "LatencyAtQuantileMS",
    "Metric",
    "NetworkErrorRatio",
    "Or",
    "Predicate",
    "PredicateError",
    "ResponseCodeRatio",
    "parse_predicate",
]


class PredicateError(ValueError):
    """An expression Traefik refuses (its router is not built)."""


@dataclass(frozen=True, slots=True)
class NetworkErrorRatio:
    """502 and 504 answers over all answers of the window (0 without answers)."""


@dataclass(frozen=True, slots=True)
class ResponseCodeRatio:
    """Answers with a status in ``[start_a, end_a)`` over those in ``[start_b, end_b)``
    (0 when the latter is 0)."""

    start_a: int
    end_a: int
    start_b: int
    end_b: int


@dataclass(frozen=True, slots=True)
class LatencyAtQuantileMS:
    """The latency (whole ms) at ``quantile`` (a percentile, 0-100) of the window."""

    quantile: float


Metric = NetworkErrorRatio | ResponseCodeRatio | LatencyAtQuantileMS


@dataclass(frozen=True, slots=True)
class Compare:
    """``metric op value``: ``op`` one of ``== != < <= > >=``; ``value`` an int for
    ``LatencyAtQuantileMS``, a float for the ratios."""

    op: str
    metric: Metric
    value: int | float


@dataclass(frozen=True, slots=True)
class And:
    left: Predicate
    right: Predicate


@dataclass(frozen=True, slots=True)
class Or:
    left: Predicate
    right: Predicate


Predicate = Compare | And | Or

# Go's types as predicate's messages print them (%T).
_GO_TYPE = {
    int: "int",
    float: "float64",
    str: "string",
    NetworkErrorRatio: "cbreaker.toFloat64",
    ResponseCodeRatio: "cbreaker.toFloat64",
    LatencyAtQuantileMS: "cbreaker.toInt",
    Compare: "cbreaker.hpredicate",
    And: "cbreaker.hpredicate",
    Or: "cbreaker.hpredicate",
}

_OPERATORS = [
    "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "&^", "<-", "++", "--", "...",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", ":=",
    "+", "-", "*", "/", "%", "&", "|", "^", "<", ">", "=", "!", "(", ")", "[", "]",
    "{", "}", ",", ".", ":", ";", "~",
]  # fmt: skip
_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "|": 4, "^": 4,
    "*": 5, "/": 5, "%": 5, "<<": 5, ">>": 5, "&": 5, "&^": 5,
}  # fmt: skip
_UNARY = {"+", "-", "!", "^", "*", "&", "<-", "~"}
_JOINS = {"&&", "||", "==", "!=", "<", "<=", ">", ">="}

_DEC = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_NUMBER = re.compile(
    rf"0[xX](?:_?{_HEX})?(?:\.(?:{_HEX})?)?(?:[pP][+-]?{_DEC})?i?"
    rf"|0[bB](?:_?[01])+i?|0[oO](?:_?[0-7])+i?"
    rf"|(?:{_DEC}(?:\.(?:{_DEC})?)?|\.{_DEC})(?:[eE][+-]?{_DEC})?i?"
)
_IDENT = re.compile(r"[^\W\d]\w*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')
_CHAR = re.compile(r"'(?:[^'\\\n]|\\.)+'")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # op, ident, INT, FLOAT, IMAG, STRING, CHAR, EOF
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c.isdigit() or (c == "." and text[i + 1 : i + 2].isdigit()):
            m = _NUMBER.match(text, i)
            assert m is not None  # a digit always starts a match
            word = m.group()
            if word.endswith("i"):
                kind = "IMAG"
            elif (word[:2].lower() in ("0x",) and ("." in word or "p" in word.lower())) or (
                word[:2].lower() not in ("0x", "0b", "0o") and any(ch in word for ch in ".eE")
            ):
                kind = "FLOAT"
            else:
                kind = "INT"
                digits = word.replace("_", "")
                if len(digits) > 1 and digits[0] == "0" and digits.isdigit():
                    bad = next((ch for ch in digits if ch in "89"), None)
                    if bad is not None:  # Go's scanner: a leading 0 is octal
                        raise PredicateError(f"1:{i + 1}: invalid digit {bad!r} in octal literal")
            out.append(_Token(kind, word, i + 1))
            i = m.end()
            continue
        m = _IDENT.match(text, i)
        if m:
            out.append(_Token("ident", m.group(), i + 1))
            i = m.end()
            continue
        for pattern, kind in ((_STRING, "STRING"), (_CHAR, "CHAR")):
            m = pattern.match(text, i)
            if m:
                out.append(_Token(kind, m.group(), i + 1))
                i = m.end()
                break
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    out.append(_Token("op", op, i + 1))
                    i += len(op)
                    break
            else:
                raise PredicateError(f"1:{i + 1}: invalid character {c!r}")
        continue
    out.append(_Token("EOF", "EOF", len(text) + 1))
    return out


# Go's syntax tree, as far as predicate looks at it.
@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    x: object
    y: object


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    x: object


@dataclass(frozen=True, slots=True)
class _Paren:
    x: object


@dataclass(frozen=True, slots=True)
class _Literal:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class _Ident:
    name: str


@dataclass(frozen=True, slots=True)
class _Selector:
    x: object
    name: str


@dataclass(frozen=True, slots=True)
class _Call:
    fun: object
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    x: object


class _Parser:
    """Go's expression grammar (``parser.ParseExpr``) for what an expression may hold."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def fail(self, expected: str) -> PredicateError:
        tok = self.tok
        return PredicateError(f"1:{tok.column}: expected {expected}, found {tok.text!r}")

    def expect(self, op: str) -> None:
        if self.tok.kind != "op" or self.tok.text != op:
            raise self.fail(repr(op))
        self.pos += 1

    def parse(self) -> object:
        expr = self.binary(1)
        if self.tok.kind != "EOF":
            raise self.fail("'EOF'")
        return expr

    def binary(self, precedence: int) -> object:
        x = self.unary()
        while True:
            tok = self.tok
            level = _BINARY_PRECEDENCE.get(tok.text, 0) if tok.kind == "op" else 0
            if level < precedence:
                return x
            self.pos += 1
            x = _Binary(tok.text, x, self.binary(level + 1))

    def unary(self) -> object:
        tok = self.tok
        if tok.kind == "op" and tok.text in _UNARY:
            self.pos += 1
            return _Unary(tok.text, self.unary())
        return self.primary()

    def primary(self) -> object:
        x = self.operand()
        while self.tok.kind == "op":
            if self.tok.text == "(":
                self.pos += 1
                args: list[object] = []
                while not (self.tok.kind == "op" and self.tok.text == ")"):
                    args.append(self.binary(1))
                    if self.tok.kind == "op" and self.tok.text == ",":
                        self.pos += 1
                    elif not (self.tok.kind == "op" and self.tok.text == ")"):
                        raise self.fail("')'")
                self.pos += 1
                x = _Call(x, tuple(args))
            elif self.tok.text == ".":
                self.pos += 1
                if self.tok.kind != "ident":
                    raise self.fail("selector or type assertion")
                x = _Selector(x, self.tok.text)
                self.pos += 1
            elif self.tok.text == "[":
                self.pos += 1
                self.binary(1)
                self.expect("]")
                x = _Index(x)
            else:
                break
        return x

    def operand(self) -> object:
        tok = self.tok
        if tok.kind == "ident":
            self.pos += 1
            return _Ident(tok.text)
        if tok.kind in ("INT", "FLOAT", "IMAG", "STRING", "CHAR"):
            self.pos += 1
            return _Literal(tok.kind, tok.text)
        if tok.kind == "op" and tok.text == "(":
            self.pos += 1
            inner = self.binary(1)
            self.expect(")")
            return _Paren(inner)
        raise self.fail("operand")


def _go_type(value: object) -> str:
    return _GO_TYPE.get(type(value), type(value).__name__)


def _literal(node: _Literal) -> object:
    """predicate's ``literalToValue``: Go's ``strconv`` on the literal's text."""
    if node.kind == "INT":
        # strconv.Atoi: decimal only (leading zeros allowed), no prefix, no underscore.
        if not node.text.isdigit() or not node.text.isascii():
            raise PredicateError(
                f"failed to parse argument: {node.text}, error: strconv.Atoi: parsing "
                f'"{node.text}": invalid syntax'
            )
        value = int(node.text)
        if value >= 2**63:
            raise PredicateError(
                f"failed to parse argument: {node.text}, error: strconv.Atoi: parsing "
                f'"{node.text}": value out of range'
            )
        return value
    if node.kind == "FLOAT":
        text = node.text
        try:
            if text[:2].lower() == "0x":
                return float.fromhex(text.replace("_", ""))
            if "_" in text:
                raise ValueError(text)
            return float(text)
        except (ValueError, OverflowError):
            raise PredicateError(
                f"failed to parse argument: {text}, error: strconv.ParseFloat: parsing "
                f'"{text}": invalid syntax'
            ) from None
    if node.kind == "STRING":
        if node.text.startswith("`"):
            return node.text[1:-1]
        try:
            raw = node.text[1:-1].encode("latin-1", "backslashreplace")
            return raw.decode("unicode_escape")
        except UnicodeDecodeError:
            raise PredicateError(
                f"failed to parse argument: {node.text}, error: invalid syntax"
            ) from None
    raise PredicateError(f"unsupported function argument type: '{node.kind}'")


def _call(name: str, args: list[object]) -> object:
    """oxy's three functions called as Go's ``reflect.Value.Call`` calls them."""
    params: tuple[type, ...]
    if name == "NetworkErrorRatio":
        params = ()
    elif name == "ResponseCodeRatio":
        params = (int, int, int, int)
    elif name == "LatencyAtQuantileMS":
        params = (float,)
    else:
        raise PredicateError(f"unsupported function: {name}")
    if len(args) < len(params):
        raise PredicateError("reflect: Call with too few input arguments")
    if len(args) > len(params):
        raise PredicateError("reflect: Call with too many input arguments")
    for arg, param in zip(args, params, strict=True):
        if type(arg) is not param:
            names = {int: "int", float: "float64"}
            raise PredicateError(f"reflect: Call using {_go_type(arg)} as type {names[param]}")
    if name == "NetworkErrorRatio":
        return NetworkErrorRatio()
    if name == "ResponseCodeRatio":
        a, b, c, d = (int(x) for x in args)  # type: ignore[call-overload]
        return ResponseCodeRatio(a, b, c, d)
    return LatencyAtQuantileMS(float(args[0]))  # type: ignore[arg-type]


_OP_NAMES = {"==": "eq", "!=": "eq", "<": "lt", "<=": "lt", ">": "gt", ">=": "gt"}


def _compare(op: str, metric: object, value: object) -> Compare:
    """oxy's ``eq``/``neq``/``lt``/``le``/``gt``/``ge``: a metric, then a constant."""
    if isinstance(metric, LatencyAtQuantileMS):
        if type(value) is not int:
            raise PredicateError(f"expected int, got {_go_type(value)}")
        return Compare(op, metric, value)
    if isinstance(metric, (NetworkErrorRatio, ResponseCodeRatio)):
        if type(value) is not float:
            # oxy's float64EQ says float64; its float64LT and float64GT say int.
            wanted = "float64" if op in ("==", "!=") else "int"
            raise PredicateError(f"expected {wanted}, got {_go_type(value)}")
        return Compare(op, metric, value)
    raise PredicateError(f"{_OP_NAMES[op]}: unsupported argument: {_go_type(metric)}")


class _Evaluator:
    """predicate's ``parse`` and ``evaluateExpr`` over Go's syntax tree."""

    def parse(self, node: object) -> object:
        if isinstance(node, _Binary):
            x = self.parse(node.x)
            y = self.parse(node.y)
            if node.op not in _JOINS:
                raise PredicateError(f"{node.op} is not supported")
            if node.op in ("&&", "||"):
                for arg in (x, y):
                    if not isinstance(arg, (Compare, And, Or)):
                        raise PredicateError(
                            f"reflect: cannot use {_go_type(arg)} as type cbreaker.hpredicate "
                            "in Call"
                        )
                return (And if node.op == "&&" else Or)(x, y)  # type: ignore[arg-type]
            return _compare(node.op, x, y)
        if isinstance(node, _Paren):
            return self.parse(node.x)
        if isinstance(node, _Unary):
            raise PredicateError(f"{node.op} is not supported")
        return self.evaluate(node)

    def evaluate(self, node: object) -> object:
        if isinstance(node, _Literal):
            return _literal(node)
        if isinstance(node, _Index):
            raise PredicateError("properties are not supported")
        if isinstance(node, _Selector):
            raise PredicateError(f"{_selector(node)} is not defined")
        if isinstance(node, _Ident):
            raise PredicateError(f"{node.name} is not defined")
        if isinstance(node, _Call):
            if isinstance(node.fun, _Ident):
                name = node.fun.name
            elif isinstance(node.fun, _Selector) and isinstance(node.fun.x, _Ident):
                name = f"{node.fun.x.name}.{node.fun.name}"
            else:
                raise PredicateError(f"expected identifier, got: {_ast_type(node.fun)}")
            if name not in ("NetworkErrorRatio", "ResponseCodeRatio", "LatencyAtQuantileMS"):
                raise PredicateError(f"unsupported function: {name}")
            return _call(name, [self.evaluate(arg) for arg in node.args])
        raise PredicateError(f"{_ast_type(node)} is not supported")


def _selector(node: _Selector) -> str:
    if isinstance(node.x, _Selector):
        return f"{_selector(node.x)}.{node.name}"
    if isinstance(node.x, _Ident):
        return f"{node.x.name}.{node.name}"
    raise PredicateError(f"unsupported selector type: {_ast_type(node.x)}")


def _ast_type(node: object) -> str:
    names = {
        _Binary: "*ast.BinaryExpr",
        _Unary: "*ast.UnaryExpr",
        _Paren: "*ast.ParenExpr",
        _Call: "*ast.CallExpr",
        _Index: "*ast.IndexExpr",
        _Literal: "*ast.BasicLit",
        _Ident: "*ast.Ident",
        _Selector: "*ast.SelectorExpr",
    }
    return names.get(type(node), "ast.Expr")


def parse_predicate(text: str) -> Predicate:
    """``expression`` as oxy's ``parseExpression`` reads it, or :class:`PredicateError`
    with the message Traefik logs."""
    tree = _Parser(text).parse()
    result = _Evaluator().parse(tree)
    if not isinstance(result, (Compare, And, Or)):
        raise PredicateError(f"expected predicate, got {_go_type(result)}")
    return result
