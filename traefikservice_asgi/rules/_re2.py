"""Go RE2 (``regexp`` package) syntax, validated and translated to Python ``re``.

Traefik compiles every regex of a rule with Go's ``regexp.Compile``. A rule Traefik
rejects must be rejected here too, and an accepted one must mean the same thing. So
this module parses the pattern with Go's grammar (``regexp/syntax``, Perl flags) and
emits an equivalent Python pattern instead of handing the text to ``re`` directly,
because the two dialects disagree in ways that change matches:

* Go's ``\\d \\w \\s \\b`` are ASCII-only; Python's are Unicode.
* Go's ``$`` (without ``m``) is the end of the text; Python's also matches before a final
  newline. ``\\z`` is Go's end of text, ``\\Z`` does not exist in Go.
* Go accepts ``(?i)`` anywhere (scoped to the enclosing group), ``(?U)`` (ungreedy),
  ``(?<name>...)``, ``\\Q...\\E``, ``[[:alpha:]]``, ``\\x{10FFFF}``, names starting with
  a digit, and octal ``\\12`` (which Python reads as a backreference).
* Go rejects backreferences, lookaround, atomic groups, ``x**``, repeat counts over 1000
  and unknown escapes such as ``\\e`` that Python would accept.

Not supported (rejected with a clear ``RegexError``, although Go accepts them): Unicode
classes ``\\pL`` / ``\\p{Greek}``. Python's backtracking engine is also not linear-time
like RE2: a pathological pattern such as ``(a+)+$`` can be slow on hostile input here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RegexError", "compile_re2"]

_FOLD, _MULTILINE, _DOTNL, _UNGREEDY = 1, 2, 4, 8
_FLAG_BITS = {"i": _FOLD, "m": _MULTILINE, "s": _DOTNL, "U": _UNGREEDY}
_MAX_REPEAT = 1000
#: Go allows 1000 levels of nesting; Python's recursive ``sre`` compiler gives out
#: long before that, so deeper patterns are refused up front instead of crashing.
_MAX_DEPTH = 200
_MAX_RUNE = 0x10FFFF

Ranges = list[tuple[int, int]]

_DIGIT: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_PERL = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
_POSIX: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": _WORD,
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_WORD_CHARS = "0-9A-Za-z_"


class RegexError(Exception):
    """A pattern Go's ``regexp.Compile`` would reject; ``offset`` indexes the pattern."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _negate(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return out


def _esc_cp(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _class_text(ranges: Ranges) -> str:
    if not ranges:
        return "(?!)"  # an empty class matches nothing
    body = "".join(
        _esc_cp(lo) if lo == hi else f"{_esc_cp(lo)}-{_esc_cp(hi)}" for lo, hi in sorted(ranges)
    )
    return f"[{body}]"


@dataclass
class _Item:
    text: str
    weight: int = 1  # product of nested counted repeats, Go's repeatIsValid budget


@dataclass
class _Frame:
    flags: int  # flags to restore when the group closes
    capture: bool
    open_at: int
    alts: list[str] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    weight: int = 1


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.flags = 0
        self.stack: list[_Frame] = [_Frame(0, False, 0)]
        self.last_repeat = False

    # -- helpers
    def err(self, code: str, start: int, end: int | None = None) -> RegexError:
        expr = self.p[start : end if end is not None else self.i]
        return RegexError(f"{code}: `{expr}`", start)

    def fold(self, text: str) -> str:
        return f"(?i:{text})" if self.flags & _FOLD else text

    def push(self, text: str, weight: int = 1) -> None:
        self.stack[-1].items.append(_Item(text, weight))

    def literal(self, ch: str) -> None:
        self.push(self.fold(re.escape(ch)))

    # -- main loop
    def translate(self) -> str:
        p = self.p
        n = len(p)
        while self.i < n:
            start = self.i
            ch = p[start]
            repeat = False
            if ch == "(":
                self.open_group()
            elif ch == "|":
                frame = self.stack[-1]
                frame.alts.append("".join(item.text for item in frame.items))
                frame.weight = max([frame.weight, *(item.weight for item in frame.items)])
                frame.items = []
                self.i += 1
            elif ch == ")":
                self.close_group()
            elif ch == "^":
                self.push("(?m:^)" if self.flags & _MULTILINE else "\\A")
                self.i += 1
            elif ch == "$":
                self.push("(?m:$)" if self.flags & _MULTILINE else "\\Z")
                self.i += 1
            elif ch == ".":
                self.push("(?s:.)" if self.flags & _DOTNL else "[^\\n]")
                self.i += 1
            elif ch == "[":
                self.push(self.fold(_class_text(self.parse_class())))
            elif ch in "*+?":
                self.i += 1
                self.repeat(ch, start, 1)
                repeat = True
            elif ch == "{":
                parsed = self.parse_repeat_braces()
                if parsed is None:
                    self.literal("{")
                    self.i += 1
                else:
                    lo, hi, end = parsed
                    self.i = end
                    if lo < 0 or lo > _MAX_REPEAT or hi > _MAX_REPEAT or (0 <= hi < lo):
                        raise self.err("invalid repeat count", start)
                    text = f"{{{lo}}}" if hi == lo else f"{{{lo},}}" if hi < 0 else f"{{{lo},{hi}}}"
                    m = hi if hi >= 0 else lo
                    self.repeat(text, start, m, counted=lo >= 2 or hi >= 2)
                    repeat = True
            elif ch == "\\":
                self.escape()
            else:
                self.literal(ch)
                self.i += 1
            self.last_repeat = repeat
        if len(self.stack) != 1:
            raise self.err("missing closing )", self.stack[-1].open_at, n)
        frame = self.stack[0]
        frame.alts.append("".join(item.text for item in frame.items))
        return "|".join(frame.alts)

    def open_group(self) -> None:
        p = self.p
        start = self.i
        if not p.startswith("(?", start):
            self.begin_group(capture=True)
            self.i += 1
            return
        rest = p[start:]
        for prefix, what in (
            ("(?=", "lookahead"),
            ("(?!", "lookahead"),
            ("(?<=", "lookbehind"),
            ("(?<!", "lookbehind"),
            ("(?P=", "backreferences"),
            ("(?>", "atomic groups"),
            ("(?#", "comments"),
        ):
            if rest.startswith(prefix):
                raise RegexError(
                    f"RE2 does not support {what}: invalid or unsupported Perl syntax `{prefix}`",
                    start,
                )
        if (len(rest) > 4 and rest[2] == "P" and rest[3] == "<") or (
            len(rest) > 3 and rest[2] == "<"
        ):
            name_start = start + (4 if rest[2] == "P" else 3)
            end = p.find(">", start)
            if end < 0:
                raise self.err("invalid named capture", start, len(p))
            name = p[name_start:end]
            if not name or not all(c == "_" or (c.isascii() and c.isalnum()) for c in name):
                raise self.err("invalid named capture", start, end + 1)
            self.begin_group(capture=True)
            self.i = end + 1
            return
        # Flags, possibly opening a non-capturing group.
        flags = self.flags
        sign = 1
        saw_flag = False
        j = start + 2
        while j < len(p):
            c = p[j]
            j += 1
            if c in _FLAG_BITS:
                bit = _FLAG_BITS[c]
                if c == "m":  # Go's flag is OneLine; "m" clears it, "-m" sets it
                    flags = flags | bit if sign > 0 else flags & ~bit
                else:
                    flags = flags | bit if sign > 0 else flags & ~bit
                saw_flag = True
            elif c == "-":
                if sign < 0:
                    break
                sign = -1
                saw_flag = False
            elif c in ":)":
                if sign < 0 and not saw_flag:
                    break
                if c == ":":
                    self.begin_group(capture=False)
                self.flags = flags
                self.i = j
                return
            else:
                break
        raise self.err("invalid or unsupported Perl syntax", start, j)

    def begin_group(self, capture: bool) -> None:
        if len(self.stack) > _MAX_DEPTH:
            raise RegexError(f"expression nests groups deeper than {_MAX_DEPTH}", self.i)
        self.stack.append(_Frame(self.flags, capture, self.i))

    def close_group(self) -> None:
        if len(self.stack) == 1:
            raise self.err("unexpected )", self.i, self.i + 1)
        frame = self.stack.pop()
        frame.alts.append("".join(item.text for item in frame.items))
        weight = max([frame.weight, *(item.weight for item in frame.items)])
        self.flags = frame.flags
        self.i += 1
        self.push("(?:" + "|".join(frame.alts) + ")", weight)

    def repeat(self, op: str, start: int, m: int, counted: bool = False) -> None:
        p = self.p
        lazy = bool(self.flags & _UNGREEDY)
        if self.i < len(p) and p[self.i] == "?":
            self.i += 1
            lazy = not lazy
        if self.last_repeat:
            raise self.err("invalid nested repetition operator", start)
        items = self.stack[-1].items
        if not items:
            raise self.err("missing argument to repetition operator", start)
        sub = items.pop()
        weight = sub.weight
        if op not in "*+?":
            weight = weight * m if m > 0 else 1
            if counted and weight > _MAX_REPEAT:
                raise self.err("invalid repeat count", start)
        items.append(_Item(f"(?:{sub.text}){op}{'?' if lazy else ''}", weight))

    def parse_int(self, j: int) -> tuple[int, int] | None:
        p = self.p
        if j >= len(p) or not ("0" <= p[j] <= "9"):
            return None
        if p[j] == "0" and j + 1 < len(p) and "0" <= p[j + 1] <= "9":
            return None  # Go disallows leading zeros: the brace is then a literal
        k = j
        while k < len(p) and "0" <= p[k] <= "9":
            k += 1
        digits = p[j:k]
        return (int(digits) if len(digits) <= 8 else -1), k

    def parse_repeat_braces(self) -> tuple[int, int, int] | None:
        p = self.p
        first = self.parse_int(self.i + 1)
        if first is None:
            return None
        lo, j = first
        if j >= len(p):
            return None
        hi = lo
        if p[j] == ",":
            j += 1
            if j >= len(p):
                return None
            if p[j] == "}":
                hi = -1
            else:
                second = self.parse_int(j)
                if second is None:
                    return None
                hi, j = second
                if hi < 0:
                    lo = -1
        if j >= len(p) or p[j] != "}":
            return None
        return lo, hi, j + 1

    def escape(self) -> None:
        p = self.p
        start = self.i
        if start + 1 >= len(p):
            raise self.err("trailing backslash at end of expression", start, len(p))
        c = p[start + 1]
        simple = {"A": "\\A", "z": "\\Z", "b": "(?a:\\b)", "B": "(?a:\\B)"}
        if c in simple:
            self.push(simple[c])
            self.i += 2
            return
        if c == "C":
            raise self.err("invalid escape sequence", start, start + 2)
        if c == "Q":
            end = p.find("\\E", start + 2)
            lit = p[start + 2 :] if end < 0 else p[start + 2 : end]
            for ch in lit:
                self.literal(ch)
            self.i = len(p) if end < 0 else end + 2
            return
        if c in "pP":
            raise RegexError(
                f"Unicode classes such as `{p[start : start + 3]}` are not supported "
                "by traefikservice-asgi (Go's RE2 accepts them)",
                start,
            )
        if c.lower() in _PERL:
            ranges = _PERL[c.lower()]
            self.push(self.fold(_class_text(_negate(ranges) if c.isupper() else ranges)))
            self.i += 2
            return
        cp, self.i = self.parse_escape(start)
        self.literal(chr(cp))

    def parse_escape(self, start: int) -> tuple[int, int]:
        """Go's ``parseEscape``: a single escaped character; returns (code point, end)."""
        p = self.p
        if start + 1 >= len(p):
            raise self.err("trailing backslash at end of expression", start, len(p))
        c = p[start + 1]
        j = start + 2
        if c.isascii() and not c.isalnum():
            return ord(c), j
        if "1" <= c <= "7" and not (j < len(p) and "0" <= p[j] <= "7"):
            raise RegexError(
                f"RE2 does not support backreferences: invalid escape sequence `\\{c}`", start
            )
        if "0" <= c <= "7":
            value = int(c)
            for _ in range(2):
                if j < len(p) and "0" <= p[j] <= "7":
                    value = value * 8 + int(p[j])
                    j += 1
            return value, j
        if c == "x":
            if j < len(p) and p[j] == "{":
                end = p.find("}", j)
                digits = p[j + 1 : end] if end >= 0 else ""
                if (
                    end < 0
                    or not digits
                    or not all(d in "0123456789abcdefABCDEF" for d in digits)
                    or int(digits, 16) > _MAX_RUNE
                ):
                    raise self.err("invalid escape sequence", start, end + 1 if end >= 0 else j)
                return int(digits, 16), end + 1
            digits = p[j : j + 2]
            if len(digits) == 2 and all(d in "0123456789abcdefABCDEF" for d in digits):
                return int(digits, 16), j + 2
            raise self.err("invalid escape sequence", start, min(j + 2, len(p)))
        controls = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c in controls:
            return controls[c], j
        raise self.err("invalid escape sequence", start, j)

    def parse_class(self) -> Ranges:
        """Go's ``parseClass``: ``[...]`` to a list of code point ranges."""
        p = self.p
        start = self.i
        j = start + 1
        negated = False
        if j < len(p) and p[j] == "^":
            negated = True
            j += 1
        ranges: Ranges = []
        first = True
        while first or j >= len(p) or p[j] != "]":
            if j >= len(p):
                raise self.err("missing closing ]", start, len(p))
            first = False
            if p.startswith("[:", j):
                end = p.find(":]", j + 2)
                if end >= 0:
                    name = p[j + 2 : end]
                    neg = name.startswith("^")
                    group = _POSIX.get(name[1:] if neg else name)
                    if group is None:
                        raise self.err("invalid character class range", j, end + 2)
                    ranges.extend(_negate(group) if neg else group)
                    j = end + 2
                    continue
            if p.startswith("\\p", j) or p.startswith("\\P", j):
                self.i = j
                self.escape()  # raises: Unicode classes are not supported
            if p[j] == "\\" and j + 1 < len(p) and p[j + 1].lower() in _PERL:
                group = _PERL[p[j + 1].lower()]
                ranges.extend(_negate(group) if p[j + 1].isupper() else group)
                j += 2
                continue
            range_start = j
            lo, j = self.class_char(j, start)
            hi = lo
            if j + 1 < len(p) and p[j] == "-" and p[j + 1] != "]":
                hi, j = self.class_char(j + 1, start)
                if hi < lo:
                    raise self.err("invalid character class range", range_start, j)
            ranges.append((lo, hi))
        self.i = j + 1
        return _negate(ranges) if negated else ranges

    def class_char(self, j: int, class_start: int) -> tuple[int, int]:
        p = self.p
        if j >= len(p):
            raise self.err("missing closing ]", class_start, len(p))
        if p[j] == "\\":
            return self.parse_escape(j)
        return ord(p[j]), j + 1


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern to an equivalent Python pattern (use ``.search``).

    Raises ``RegexError`` for anything Go's ``regexp.Compile`` rejects, and for the few
    constructs listed in the module docstring that this translation does not support.
    """
    for index, ch in enumerate(pattern):
        if "\ud800" <= ch <= "\udfff":
            raise RegexError("invalid UTF-8 in regexp", index)
    translated = _Translator(pattern).translate()
    try:
        return re.compile(translated)
    except (re.error, RecursionError, OverflowError) as exc:  # pragma: no cover - defensive
        raise RegexError(f"regexp not supported by Python's re: {exc}", 0) from None
