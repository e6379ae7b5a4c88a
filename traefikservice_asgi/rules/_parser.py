"""Tokenizer and parser for router rules: the rule text becomes a small, frozen AST.

Traefik hands a rule to ``vulcand/predicate``, which parses it with Go's own
``go/parser.ParseExpr`` and then walks the Go AST. So the accepted language is "a Go
expression built only from calls, ``&&``, ``||``, ``!`` and parentheses, whose call
arguments are string literals". This module accepts exactly that, including the Go
lexical details a hand-written rule can hit:

* whitespace is space, tab, CR and LF only; ``//`` and ``/* */`` comments are allowed;
* a newline after ``)``, an identifier or a literal ends the expression (Go's automatic
  semicolon insertion), so ``Host(`a`)`` + newline + ``&& Path(`/`)`` is an error while
  ``&&`` + newline is fine;
* a call may end with a trailing comma, and the last argument may carry ``...``;
* ``"..."`` literals use Go escapes (``\\n``, ``\\x41``, ``\\101``, ``\\u00e9``...), raw
  backquoted literals drop carriage returns;
* ``&&`` binds tighter than ``||``; ``!`` binds tightest.

Matcher names are *not* resolved here (they depend on the v2/v3 syntax); see
``_matchers.py``. Every error is a ``RuleError`` pointing at the offending character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Union

from traefikservice_asgi.exceptions import RuleError

__all__ = ["And", "Call", "Node", "Not", "Or", "StringArg", "parse_rule"]

#: Deepest nesting of parentheses / ``!`` accepted. Go allows far more, but a rule
#: nested deeper than this is a generated mistake, and the limit keeps parsing and
#: matching well inside Python's recursion limit.
MAX_NESTING = 100


@dataclass(frozen=True, slots=True)
class StringArg:
    """A matcher argument: the decoded value and where its literal starts in the rule.

    ``raw`` is true for backquoted literals without carriage returns, whose characters
    map one to one onto the rule text (so a regex error can point inside them).
    """

    value: str
    position: int
    raw: bool


@dataclass(frozen=True, slots=True)
class Call:
    """A matcher call such as ``Host(`a.example.com`)``, name as written."""

    name: str
    position: int
    args: tuple[StringArg, ...]
    end: int  # position of the closing parenthesis


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    position: int


@dataclass(frozen=True, slots=True)
class And:
    """``a && b && c``; operands are flattened so long chains do not nest."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Union[Call, Not, And, Or]  # noqa: UP007  (a runtime alias; `|` needs 3.10 objects)


# --------------------------------------------------------------------------- tokens

_IDENT, _STRING, _OP, _SEMI, _EOF = "ident", "string", "op", "semi", "eof"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str  # identifier name, operator text, or the literal's source text
    position: int
    value: str = ""  # decoded string literal
    raw: bool = False


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def _is_letter(ch: str) -> bool:
    """Go's ``isLetter``: ASCII letters, ``_``, or any Unicode letter."""
    if ch.isascii():
        return ch.isalpha() or ch == "_"
    return unicodedata.category(ch).startswith("L")


def _is_digit(ch: str) -> bool:
    """Go's ``isDigit``: ASCII digits or any Unicode decimal digit (Nd)."""
    if ch.isascii():
        return "0" <= ch <= "9"
    return unicodedata.category(ch) == "Nd"


_UNQUOTED_CALL = re.compile(r"([A-Za-z][A-Za-z0-9]*)\(([^()`\"']+)\)")


def _quoting_hint(rule: str, position: int) -> str:
    """``; did you mean Host(`example.com`)?`` when ``position`` falls inside a matcher
    call whose arguments were written without quotes, the commonest first mistake."""
    for call in _UNQUOTED_CALL.finditer(rule):
        if call.start(2) <= position < call.end(2):
            args = ", ".join(f"`{a.strip()}`" for a in call.group(2).split(",") if a.strip())
            return (
                f"; did you mean {call.group(1)}({args})? "
                "(matcher arguments are quoted with backquotes or double quotes)"
            )
    return ""


class _Lexer:
    """Go's scanner, reduced to the tokens a rule can contain."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.pos = 0
        self.insert_semi = False
        for index, ch in enumerate(rule):
            if "\ud800" <= ch <= "\udfff":
                # A Go string cannot hold one; the YAML it came from would not be UTF-8.
                raise RuleError("invalid UTF-8 in rule (lone surrogate)", rule, index)
            if ch == "\x00":
                raise RuleError("illegal character NUL", rule, index)
            if ch == "\ufeff" and index > 0:
                raise RuleError("illegal byte order mark", rule, index)
        if rule.startswith("\ufeff"):  # Go's scanner skips a leading byte order mark
            self.pos = 1

    def error(self, message: str, position: int) -> RuleError:
        return RuleError(message + _quoting_hint(self.rule, position), self.rule, position)

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        while True:
            token = self.next()
            out.append(token)
            if token.kind == _EOF:
                return out

    def next(self) -> _Token:
        rule = self.rule
        n = len(rule)
        while self.pos < n:
            ch = rule[self.pos]
            if ch == "\n" and self.insert_semi:
                self.insert_semi = False
                token = _Token(_SEMI, "newline", self.pos)
                self.pos += 1
                return token
            if ch in " \t\r\n":
                self.pos += 1
                continue
            if rule.startswith("//", self.pos):
                end = rule.find("\n", self.pos)
                self.pos = n if end < 0 else end
                continue
            if rule.startswith("/*", self.pos):
                end = rule.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("comment not terminated", self.pos)
                has_newline = "\n" in rule[self.pos : end]
                start = self.pos
                self.pos = end + 2
                if has_newline and self.insert_semi:
                    self.insert_semi = False
                    return _Token(_SEMI, "newline", start)
                continue
            break
        if self.pos >= n:
            if self.insert_semi:
                self.insert_semi = False
                return _Token(_SEMI, "newline", n)
            return _Token(_EOF, "end of rule", n)

        start = self.pos
        ch = rule[start]
        if _is_letter(ch):
            end = start + 1
            while end < n and (_is_letter(rule[end]) or _is_digit(rule[end])):
                end += 1
            self.pos = end
            self.insert_semi = True
            return _Token(_IDENT, rule[start:end], start)
        if ch == "`":
            end = rule.find("`", start + 1)
            if end < 0:
                raise self.error("raw string literal not terminated", start)
            self.pos = end + 1
            self.insert_semi = True
            body = rule[start + 1 : end]
            return _Token(
                _STRING, rule[start : end + 1], start, body.replace("\r", ""), "\r" not in body
            )
        if ch == '"':
            return self._interpreted_string(start)
        self.insert_semi = False
        for op in ("&&", "||", "..."):
            if rule.startswith(op, start):
                self.pos = start + len(op)
                return _Token(_OP, op, start)
        if ch in "!(),":
            self.pos = start + 1
            if ch == ")":
                self.insert_semi = True
            return _Token(_OP, ch, start)
        if _is_digit(ch) or ch == "'":
            raise self.error("matcher arguments must be string literals", start)
        if ch == "\x00":
            raise self.error("illegal character NUL", start)
        if ch in "&|=<>+-*/%^:;.[]{}~":
            raise self.error(f"operator {ch!r} is not supported (use &&, || and !)", start)
        raise self.error(f"unexpected character {ch!r}", start)

    def _interpreted_string(self, start: int) -> _Token:
        """Scan and decode a ``"..."`` literal exactly as ``strconv.Unquote`` would.

        ``\\xNN`` and octal escapes produce *bytes* in Go; they are kept as bytes and the
        whole value decoded as UTF-8 with ``surrogateescape``, so a value compares
        byte-for-byte like Go's string does.
        """
        rule = self.rule
        n = len(rule)
        out = bytearray()
        i = start + 1
        while True:
            if i >= n or rule[i] == "\n":
                raise self.error("string literal not terminated", start)
            ch = rule[i]
            if ch == '"':
                break
            if ch != "\\":
                out += ch.encode("utf-8")
                i += 1
                continue
            esc_pos = i
            i += 1
            if i >= n:
                raise self.error("string literal not terminated", start)
            e = rule[i]
            if e in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[e].encode()
                i += 1
            elif e in _OCT:
                digits = rule[i : i + 3]
                if len(digits) < 3 or not set(digits) <= _OCT:
                    raise self.error("invalid octal escape (need 3 octal digits)", esc_pos)
                code = int(digits, 8)
                if code > 255:
                    raise self.error(f"octal escape value {code} > 255", esc_pos)
                out.append(code)
                i += 3
            elif e in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[e]
                digits = rule[i + 1 : i + 1 + width]
                if len(digits) < width or not set(digits) <= _HEX:
                    raise self.error(f"invalid \\{e} escape (need {width} hex digits)", esc_pos)
                code = int(digits, 16)
                if e == "x":
                    out.append(code)
                else:
                    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                        raise self.error(
                            f"escape \\{e}{digits} is an invalid Unicode code point", esc_pos
                        )
                    out += chr(code).encode("utf-8")
                i += 1 + width
            else:
                raise self.error(f"unknown escape sequence \\{e}", esc_pos)
        self.pos = i + 1
        self.insert_semi = True
        value = out.decode("utf-8", "surrogateescape")
        return _Token(_STRING, rule[start : i + 1], start, value, False)


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.tokens = _Lexer(rule).tokens()
        self.index = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.index]

    def error(self, message: str, position: int) -> RuleError:
        return RuleError(message + _quoting_hint(self.rule, position), self.rule, position)

    def unexpected(self, expected: str) -> RuleError:
        tok = self.tok
        found = {
            _EOF: "end of rule",
            _SEMI: "newline",
            _STRING: f"string {tok.text}",
            _IDENT: f"identifier {tok.text!r}",
        }.get(tok.kind, repr(tok.text))
        return self.error(f"expected {expected}, found {found}", tok.position)

    def at_end(self) -> bool:
        """End of input, including the semicolon Go inserts before it."""
        tok = self.tok
        return tok.kind == _EOF or (tok.kind == _SEMI and self.tokens[self.index + 1].kind == _EOF)

    def is_op(self, text: str) -> bool:
        return self.tok.kind == _OP and self.tok.text == text

    def parse(self) -> Node:
        if self.tok.kind in (_EOF, _SEMI) and all(t.kind in (_EOF, _SEMI) for t in self.tokens):
            raise self.error("empty rule", len(self.rule))
        node = self.parse_or()
        if self.tok.kind == _SEMI:
            self.index += 1
        if self.tok.kind != _EOF:
            if self.is_op(")"):
                raise self.error("unbalanced parentheses: unexpected ')'", self.tok.position)
            raise self.unexpected("&&, || or end of rule")
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.is_op("||"):
            self.index += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_unary()]
        while self.is_op("&&"):
            self.index += 1
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"rule nested deeper than {MAX_NESTING} levels", self.tok.position)

    def parse_unary(self) -> Node:
        tok = self.tok
        if self.is_op("!"):
            self.index += 1
            self.enter()
            operand = self.parse_unary()
            self.depth -= 1
            return Not(operand, tok.position)
        if self.is_op("("):
            self.index += 1
            self.enter()
            node = self.parse_or()
            self.depth -= 1
            if not self.is_op(")"):
                if self.at_end():
                    raise self.error("unbalanced parentheses: '(' is never closed", tok.position)
                raise self.unexpected("')'")
            self.index += 1
            return node
        if tok.kind == _IDENT:
            return self.parse_call()
        if tok.kind == _STRING:
            raise self.error("expected a matcher call, found a bare string", tok.position)
        if self.is_op(")"):
            raise self.error("unbalanced parentheses: unexpected ')'", tok.position)
        raise self.unexpected("a matcher such as Host(`example.com`)")

    def parse_call(self) -> Call:
        name_tok = self.tok
        self.index += 1
        if not self.is_op("("):
            if self.tok.kind in (_EOF, _SEMI) or self.is_op("&&") or self.is_op("||"):
                raise self.error(
                    f"{name_tok.text!r} is not a matcher call (missing argument list)",
                    name_tok.position,
                )
            raise self.unexpected(f"'(' after {name_tok.text!r}")
        open_tok = self.tok
        self.index += 1
        args: list[StringArg] = []
        while not self.is_op(")"):
            tok = self.tok
            if tok.kind == _STRING:
                args.append(StringArg(tok.value, tok.position, tok.raw))
                self.index += 1
            elif self.at_end():
                raise self.error("unbalanced parentheses: '(' is never closed", open_tok.position)
            elif tok.kind == _IDENT or self.is_op("(") or self.is_op("!"):
                raise self.error("matcher arguments must be string literals", tok.position)
            else:
                raise self.unexpected("a string argument or ')'")
            if self.is_op("..."):
                self.index += 1
                if self.is_op(","):
                    self.index += 1
                if not self.is_op(")"):
                    raise self.unexpected("')' after '...'")
                break
            if self.is_op(","):
                self.index += 1
                continue
            if not self.is_op(")"):
                if self.at_end():
                    raise self.error(
                        "unbalanced parentheses: '(' is never closed", open_tok.position
                    )
                if self.tok.kind == _SEMI:
                    raise self.error(
                        "missing ',' before newline in argument list", self.tok.position
                    )
                raise self.unexpected("',' or ')'")
        end = self.tok.position
        self.index += 1
        return Call(name_tok.text, name_tok.position, tuple(args), end)


def parse_rule(rule: str) -> Node:
    """Parse ``rule`` into an AST, or raise ``RuleError`` at the first fault."""
    return _Parser(rule).parse()
