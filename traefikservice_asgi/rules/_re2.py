"""Go RE2 (``regexp`` package) syntax, validated, and matched by Google's RE2.

Traefik compiles every regex of a rule with Go's ``regexp.Compile``, whose engine runs in
time linear in the input: no pattern makes a request slow. Matching here is done by
Google's RE2 (the ``google-re2`` binding), the same automata design, so a pathological
pattern such as ``(a+)+$`` answers at once on any input as it does in Traefik.

RE2's C++ grammar is Go's in most respects but not all, so the pattern is not handed to
it as written. This module parses it with Go's grammar (``regexp/syntax``, Perl flags, as
in Go 1.26, the toolchain of Traefik 3.7.15): what Go rejects is rejected with Go's
message, and what Go accepts is re-emitted as an RE2 pattern with the same meaning:

* Flags are made explicit on each item (``(?i:x)``, ``\\z`` for ``$``, ``[^\\n]`` for
  ``.``), capturing groups lose their names (Go allows duplicate names, RE2 does not;
  the names are kept aside, Go's ``SubexpNames``),
  ``(?U)`` is applied to each repetition, ``\\Q...\\E`` and octal escapes become
  literals.
* ``\\p{...}`` names are looked up as Go does (case-insensitively, ignoring ``_ - ``
  and spaces; ``\\p{Letter}``, ``\\p{greek}``, ``Any``, ``ASCII``, ``Assigned``,
  ``LC``, ``Cn``; script names holding ``_`` or a second capital, such as
  ``Old_Italic``, are refused as Go 1.26 refuses them). ``\\pC`` includes unassigned
  code points as in Go, where RE2's does not.
* Go rejects ``\\C`` (any byte), which RE2 accepts.
* Go reads invalid UTF-8 in the subject as U+FFFD, one per byte, matched by ``.`` and
  ``[^a]``; RE2 matches nothing there. Subjects (decoded with ``surrogateescape`` by the
  request view) have each escaped byte replaced by U+FFFD before matching.

Not supported (refused with a clear ``RegexError``, although Go accepts them): a negated
class holding a negated composite group (``[^a\\pC]``, ``[^\\P{ASCII}]``: RE2 has no
class intersection), and patterns whose RE2 program exceeds RE2's 8 MiB memory budget
(``\\pL{1000}``; Go's limit is larger). RE2's Unicode tables are 15.1, Go 1.26's 15.0: the
627 code points new in 15.1 (CJK Extension I, U+2FFC-2FFF, U+31EF) are classified here
and unassigned in Traefik.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from re2 import _re2 as _binding  # type: ignore[import-untyped]  # google-re2 has no stubs

__all__ = ["GoRegexp", "RegexError", "compile_re2"]

_FOLD, _MULTILINE, _DOTNL, _UNGREEDY = 1, 2, 4, 8
_FLAG_BITS = {"i": _FOLD, "m": _MULTILINE, "s": _DOTNL, "U": _UNGREEDY}
_MAX_REPEAT = 1000
#: Go allows 1000 levels of nesting; the translation adds a group per repetition and per
#: flag scope, so deeper patterns are refused up front.
_MAX_DEPTH = 200
_MAX_RUNE = 0x10FFFF

_PERL_CLASSES = "dDsSwW"
_POSIX_NAMES = frozenset({
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
})  # fmt: skip

# -- Unicode groups, Go 1.26's regexp/syntax.unicodeTable -------------------------------
#
# Each resolves to RE2 class items and whether the group is their complement.
_MAJOR = "\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}\\p{Z}"
_RE2_ASSIGNED = _MAJOR + "\\p{C}"  # RE2's C is Cc Cf Co Cs; Go's also holds Cn
_CATEGORY_NAMES = [
    "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm",
    "So", "Z", "Zl", "Zp", "Zs",
]  # fmt: skip
UnicodeGroup = tuple[str, bool]
_GROUPS: dict[str, UnicodeGroup] = {name: (f"\\p{{{name}}}", False) for name in _CATEGORY_NAMES}
_GROUPS |= {
    "Any": ("\\p{Any}", False),
    "Assigned": (_RE2_ASSIGNED, False),
    "Ascii": ("\\x{0}-\\x{7f}", False),
    "Lc": ("\\p{Lu}\\p{Ll}\\p{Lt}", False),
    "C": (_MAJOR, True),
    "Cn": (_RE2_ASSIGNED, True),
}
#: Unicode's general category aliases (PropertyValueAliases.txt), Go's CategoryAliases.
_ALIASES = {
    "Other": "C", "Control": "Cc", "cntrl": "Cc", "Format": "Cf", "Unassigned": "Cn",
    "Private_Use": "Co", "Surrogate": "Cs", "Letter": "L", "Cased_Letter": "Lc",
    "Lowercase_Letter": "Ll", "Modifier_Letter": "Lm", "Other_Letter": "Lo",
    "Titlecase_Letter": "Lt", "Uppercase_Letter": "Lu", "Mark": "M", "Combining_Mark": "M",
    "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Nonspacing_Mark": "Mn", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No",
    "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd", "Close_Punctuation": "Pe", "Final_Punctuation": "Pf",
    "Initial_Punctuation": "Pi", "Other_Punctuation": "Po", "Open_Punctuation": "Ps",
    "Symbol": "S", "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Math_Symbol": "Sm",
    "Other_Symbol": "So", "Separator": "Z", "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp", "Space_Separator": "Zs",
}  # fmt: skip


def _canonical_name(name: str) -> str:
    """Go's ``canonicalName``: ``_ - `` and spaces dropped, ``Xxxx`` case."""
    out: list[str] = []
    for c in name:
        if c in "_- ":
            continue
        if not out:
            out.append(c.upper() if "a" <= c <= "z" else c)
        else:
            out.append(c.lower() if "A" <= c <= "Z" else c)
    return "".join(out)


_CANONICAL_ALIASES = {_canonical_name(alias): name for alias, name in _ALIASES.items()}


class _RE2Options(Protocol):
    log_errors: bool
    never_capture: bool


class _RE2(Protocol):
    """The part of ``re2._re2.RE2`` (a pybind11 class over ``re2::RE2``) used here."""

    def ok(self) -> bool: ...

    def error(self) -> bytes: ...

    def Match(  # the binding's name
        self, anchor: object, text: bytes, pos: int, endpos: int
    ) -> list[tuple[int, int]]: ...


def _options() -> _RE2Options:
    """RE2's defaults are Go's (Perl classes, UTF-8, leftmost-first); no captures."""
    options: _RE2Options = _binding.RE2.Options()
    options.log_errors = False  # errors are raised, not printed to stderr
    options.never_capture = True  # only "is there a match" is asked
    return options


_OPTIONS = _options()
_CAPTURING = _options()
_CAPTURING.never_capture = False  # where the groups matched: submatch, replace_all
_UNANCHORED: object = _binding.RE2.Anchor.UNANCHORED


def _re2(pattern: str) -> _RE2:
    compiled: _RE2 = _binding.RE2(pattern.encode("utf-8"), _OPTIONS)
    return compiled


@lru_cache(maxsize=256)
def _is_script(name: str) -> bool:
    """Whether ``name`` is a Unicode script RE2 knows (its tables: Unicode 15.1)."""
    return name.isascii() and name.isalnum() and _re2(f"\\p{{{name}}}").ok()


def _unicode_group(name: str) -> UnicodeGroup | None:
    """Go's ``unicodeTable``: categories, then scripts, then category aliases."""
    canonical = _canonical_name(name)
    group = _GROUPS.get(canonical)
    if group is not None:
        return group
    if _is_script(canonical):
        return f"\\p{{{canonical}}}", False
    alias = _CANONICAL_ALIASES.get(canonical)
    return None if alias is None else _GROUPS[alias]


_SINGLE_GROUP = re.compile(r"\\p\{\w+\}")


def _negated_item(items: str) -> str | None:
    """``\\P{X}`` for the complement of a single ``\\p{X}``; ``None`` for a composite."""
    return "\\P" + items[2:] if _SINGLE_GROUP.fullmatch(items) else None


def _rune(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


def _literal(ch: str) -> str:
    return ch if ch.isascii() and ch.isalnum() else _rune(ord(ch))


class RegexError(Exception):
    """A pattern Go's ``regexp.Compile`` would reject; ``offset`` indexes the pattern."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


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
        self.names: list[str] = [""]  # Go's SubexpNames: "" for the whole match

    # -- helpers
    def err(self, code: str, start: int, end: int | None = None) -> RegexError:
        expr = self.p[start : end if end is not None else self.i]
        return RegexError(f"{code}: `{expr}`", start)

    def fold(self, text: str) -> str:
        return f"(?i:{text})" if self.flags & _FOLD else text

    def push(self, text: str, weight: int = 1) -> None:
        self.stack[-1].items.append(_Item(text, weight))

    def literal(self, ch: str) -> None:
        self.push(self.fold(_literal(ch)))

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
                self.push("(?m:$)" if self.flags & _MULTILINE else "\\z")
                self.i += 1
            elif ch == ".":
                self.push("(?s:.)" if self.flags & _DOTNL else "[^\\n]")
                self.i += 1
            elif ch == "[":
                self.push(self.fold(self.parse_class()))
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
            self.names.append("")
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
            self.names.append(name)
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
        # A capturing group stays one (unnamed: Go allows duplicate names, RE2 does not),
        # numbered as Go numbers it; matching alone compiles with ``never_capture``.
        opening = "(" if frame.capture else "(?:"
        self.push(opening + "|".join(frame.alts) + ")", weight)

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
        simple = {"A": "\\A", "z": "\\z", "b": "\\b", "B": "\\B"}
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
            items, negated, self.i = self.unicode_group(start)
            if not negated:
                text = items if _SINGLE_GROUP.fullmatch(items) else f"[{items}]"
            else:
                text = _negated_item(items) or f"[^{items}]"
            self.push(self.fold(text))
            return
        if c in _PERL_CLASSES:
            self.push(self.fold("\\" + c))
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

    def unicode_group(self, start: int) -> tuple[str, bool, int]:
        """Go's ``parseUnicodeClass`` at ``\\p``/``\\P``: (RE2 items, negated, end)."""
        p = self.p
        negated = p[start + 1] == "P"
        j = start + 2
        if j < len(p) and p[j] == "{":
            end = p.find("}", j)
            if end < 0:
                raise self.err("invalid character class range", start, len(p))
            name, j = p[j + 1 : end], end + 1
        else:
            name, j = p[j : j + 1], min(j + 1, len(p))
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        group = _unicode_group(name)
        if group is None:
            raise self.err("invalid character class range", start, j)
        items, complement = group
        return items, negated != complement, j

    def parse_class(self) -> str:
        """Go's ``parseClass``: ``[...]`` to an RE2 class with the same members."""
        p = self.p
        start = self.i
        j = start + 1
        negated = False
        if j < len(p) and p[j] == "^":
            negated = True
            j += 1
        items: list[str] = []
        complements: list[str] = []  # negated composite groups, beside the class
        first = True
        while first or j >= len(p) or p[j] != "]":
            if j >= len(p):
                raise self.err("missing closing ]", start, len(p))
            first = False
            if p.startswith("[:", j):
                end = p.find(":]", j + 2)
                if end >= 0:
                    name = p[j + 2 : end]
                    if name.removeprefix("^") not in _POSIX_NAMES:
                        raise self.err("invalid character class range", j, end + 2)
                    items.append(p[j : end + 2])
                    j = end + 2
                    continue
            if p.startswith("\\p", j) or p.startswith("\\P", j):
                group_start = j
                group, group_negated, j = self.unicode_group(j)
                if not group_negated:
                    items.append(group)
                elif (single := _negated_item(group)) is not None:
                    items.append(single)
                elif negated:
                    raise RegexError(
                        f"a negated class holding `{p[group_start:j]}` cannot be expressed "
                        "with RE2 and is not supported by traefikservice-asgi "
                        "(Go accepts it)",
                        start,
                    )
                else:
                    complements.append(f"[^{group}]")
                continue
            if p[j] == "\\" and j + 1 < len(p) and p[j + 1] in _PERL_CLASSES:
                items.append(p[j : j + 2])
                j += 2
                continue
            range_start = j
            lo, j = self.class_char(j, start)
            hi = lo
            if j + 1 < len(p) and p[j] == "-" and p[j + 1] != "]":
                hi, j = self.class_char(j + 1, start)
                if hi < lo:
                    raise self.err("invalid character class range", range_start, j)
            items.append(_rune(lo) if lo == hi else f"{_rune(lo)}-{_rune(hi)}")
        self.i = j + 1
        if not complements:
            return f"[{'^' if negated else ''}{''.join(items)}]"
        alternatives = [f"[{''.join(items)}]"] if items else []
        return "(?:" + "|".join(alternatives + complements) + ")"

    def class_char(self, j: int, class_start: int) -> tuple[int, int]:
        p = self.p
        if j >= len(p):
            raise self.err("missing closing ]", class_start, len(p))
        if p[j] == "\\":
            return self.parse_escape(j)
        return ord(p[j]), j + 1


#: Each byte ``surrogateescape`` kept from invalid UTF-8, as Go reads it: U+FFFD.
_INVALID_UTF8 = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)


class GoRegexp:
    """A Go regexp matched by RE2: ``search(text)`` says whether it matches in ``text``;
    ``submatch`` and ``replace_all`` find where, with Go's groups and expansion."""

    __slots__ = ("_capturing", "_re", "names", "pattern", "translated")

    def __init__(
        self, pattern: str, translated: str, compiled: _RE2, names: tuple[str, ...] = ("",)
    ) -> None:
        self.pattern = pattern
        """The pattern as Go reads it."""
        self.translated = translated
        """The RE2 pattern it was translated to."""
        self.names = names
        """Go's ``SubexpNames()``: ``""`` for the whole match and each unnamed group."""
        self._re = compiled
        self._capturing: _RE2 | None = None

    def search(self, text: str) -> bool:
        """Whether the regexp matches somewhere in ``text`` (Go's ``MatchString``)."""
        try:
            data = text.encode()
        except UnicodeEncodeError:  # invalid UTF-8 kept as surrogates by the request view
            data = text.translate(_INVALID_UTF8).encode()
        return self._re.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    def _groups(self) -> _RE2:
        if self._capturing is None:
            self._capturing = _binding.RE2(self.translated.encode("utf-8"), _CAPTURING)
        return self._capturing

    def submatch(self, data: bytes, pos: int = 0) -> list[tuple[int, int]] | None:
        """The leftmost-first match at or after byte ``pos`` of ``data`` (the text before
        ``pos`` still seen by ``^`` and ``\\b``), Go's ``FindSubmatchIndex``: a
        ``(start, end)`` byte span per group, ``(-1, -1)`` for a group that took no
        part; None when nothing matches. Invalid UTF-8 in ``data`` matches nothing (Go
        reads it as U+FFFD)."""
        spans = self._groups().Match(_UNANCHORED, data, pos, len(data))
        return spans if spans[0][0] >= 0 else None

    def expand(self, template: str, data: bytes, spans: Sequence[tuple[int, int]]) -> bytes:
        """Go's ``Regexp.Expand``: ``template`` with ``$1``, ``${1}``, ``$name``,
        ``${name}`` replaced by that group of the match (nothing for a group that took
        no part, or that does not exist), ``$$`` by ``$``. A name is the longest run of
        letters, digits and ``_`` (``$1x`` is the group named ``1x``); a malformed
        reference (``$``, ``${1``, ``$-``) stays as written."""
        out = bytearray()
        rest = template
        while True:
            before, dollar, after = rest.partition("$")
            if not dollar:
                break
            out += before.encode()
            rest = after
            if rest.startswith("$"):
                out += b"$"
                rest = rest[1:]
                continue
            ref = _extract(rest)
            if ref is None:
                out += b"$"
                continue
            name, num, rest = ref
            if num >= 0:
                if num < len(spans) and spans[num][0] >= 0:
                    out += data[spans[num][0] : spans[num][1]]
            else:
                for i, group in enumerate(self.names):
                    if group == name and i < len(spans) and spans[i][0] >= 0:
                        out += data[spans[i][0] : spans[i][1]]
                        break
        out += rest.encode()
        return bytes(out)

    def replace_all(self, data: bytes, template: str) -> bytes:
        """Go's ``ReplaceAllString``: every non-overlapping match of ``data`` replaced by
        ``template`` expanded (:meth:`expand`); an empty match right after a match is
        not replaced, and the search moves on by at least one character."""
        out = bytearray()
        last_end = search = 0
        end = len(data)
        while search <= end:
            spans = self.submatch(data, search)
            if spans is None:
                break
            start, stop = spans[0]
            out += data[last_end:start]
            if stop > last_end or start == 0:
                out += self.expand(template, data, spans)
            last_end = stop
            width = _rune_width(data, search)
            if search + width > stop:
                search += width
            elif search + 1 > stop:
                search += 1
            else:
                search = stop
        out += data[last_end:]
        return bytes(out)

    def __repr__(self) -> str:
        return f"GoRegexp({self.pattern!r})"


def _rune_width(data: bytes, i: int) -> int:
    """Go's ``utf8.DecodeRune(data[i:])`` width: 0 at the end, 1 for an invalid byte."""
    if i >= len(data):
        return 0
    lead = data[i]
    size = 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4
    if lead >= 0xF5 or (0x80 <= lead < 0xC2):
        return 1
    try:
        data[i : i + size].decode()
    except UnicodeDecodeError:
        return 1
    return size


def _extract(text: str) -> tuple[str, int, str] | None:
    """Go's ``regexp.extract``: the name after a ``$`` (braced or not), its number (-1
    when it is not a number without a leading zero, or is 1e8 or more), and the rest."""
    brace = text.startswith("{")
    if brace:
        text = text[1:]
    i = 0
    while i < len(text) and (text[i].isalpha() or text[i].isdecimal() or text[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = text[:i]
    if brace:
        if i >= len(text) or text[i] != "}":
            return None
        i += 1
    num = 0
    for ch in name:
        if not "0" <= ch <= "9" or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - 48
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, text[i:]


def compile_re2(pattern: str) -> GoRegexp:
    """Compile a Go regexp for matching with RE2 (linear time in the subject).

    Raises ``RegexError`` for anything Go's ``regexp.Compile`` rejects, and for the few
    constructs listed in the module docstring that RE2 cannot express.
    """
    for index, ch in enumerate(pattern):
        if "\ud800" <= ch <= "\udfff":
            raise RegexError("invalid UTF-8 in regexp", index)
    translator = _Translator(pattern)
    translated = translator.translate()
    compiled = _re2(translated)
    if not compiled.ok():
        reason = compiled.error().decode("utf-8", "replace")
        raise RegexError(f"not supported by RE2 (google-re2): {reason}", 0)
    return GoRegexp(pattern, translated, compiled, tuple(translator.names))
