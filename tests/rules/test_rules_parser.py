"""The rule language: Go expression syntax, operator precedence, literals and errors."""

from __future__ import annotations

from typing import Any

import pytest

from traefikservice_asgi.rules import RequestView, RuleError, compile_rule
from traefikservice_asgi.rules._parser import And, Call, Not, Or, StringArg, parse_rule


def view(host: str = "a.com", path: str = "/") -> RequestView:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "headers": [(b"host", host.encode())],
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "client": ("192.0.2.1", 1),
    }
    return RequestView(scope)


def test_and_binds_tighter_than_or() -> None:
    node = parse_rule("Host(`a`) || Host(`b`) && Path(`/`)")
    assert isinstance(node, Or)
    assert isinstance(node.operands[1], And)


def test_chains_are_flattened_not_nested() -> None:
    node = parse_rule(" && ".join(["Path(`/`)"] * 5))
    assert isinstance(node, And)
    assert len(node.operands) == 5


def test_negation_binds_tightest() -> None:
    node = parse_rule("!Host(`a`) && Path(`/`)")
    assert isinstance(node, And)
    assert isinstance(node.operands[0], Not)


def test_call_records_name_position_and_arguments() -> None:
    node = parse_rule('  Header(`X-A`, "b")')
    assert node == Call("Header", 2, (StringArg("X-A", 9, True), StringArg("b", 16, False)), 19)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"a\\tb"', "a\tb"),
        ('"\\x41\\101\\u00e9\\U0001F600"', "AA\u00e9\U0001f600"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ("`raw\\n`", "raw\\n"),
        ("`a\r\nb`", "a\nb"),  # Go drops carriage returns from raw strings
    ],
)
def test_string_literals_decode_like_go(literal: str, value: str) -> None:
    node = parse_rule(f"Path({literal})")
    assert isinstance(node, Call)
    assert node.args[0].value == value


@pytest.mark.parametrize("name", ["PathPrefix", "pathprefix", "PATHPREFIX", "Pathprefix"])
def test_matcher_names_accept_traefiks_four_spellings(name: str) -> None:
    assert compile_rule(f"{name}(`/a`)").matches(view(path="/a/b"))


@pytest.mark.parametrize("name", ["pathPrefix", "PAthprefix", "Path_Prefix"])
def test_other_spellings_of_matcher_names_are_unknown(name: str) -> None:
    with pytest.raises(RuleError, match="unknown matcher"):
        compile_rule(f"{name}(`/a`)")


@pytest.mark.parametrize(
    "rule",
    [
        "Host(`a.com`,)",  # trailing comma
        "Host(`a.com`...)",  # variadic spread, accepted by Go's parser
        "Host(\n`a.com`,\n)",
        "Host(`a.com`) &&\nPath(`/`)",
        "Host(`a.com`) /* comment */ && Path(`/`) // trailing",
        "\ufeffHost(`a.com`)",
        "((Host(`a.com`)))",
        "!!Host(`a.com`)",
    ],
)
def test_go_expression_syntax_is_accepted(rule: str) -> None:
    assert compile_rule(rule).matches(view())


@pytest.mark.parametrize(
    ("rule", "message", "position"),
    [
        ("Hots(`a.com`)", 'unknown matcher "Hots"', 0),
        ("Host(`a.com`) && Pth(`/`)", 'unknown matcher "Pth"', 17),
        ("Host(`a.com`, `b.com`)", "unexpected number of arguments for matcher Host", 14),
        ("Header(`X-A`)", "unexpected number of arguments for matcher Header", 12),
        ("Host()", "no arguments for matcher Host", 5),
        ("Host(``)", "empty argument for matcher Host", 5),
        ("Host(`a.com)", "raw string literal not terminated", 5),
        ('Host("a.com)', "string literal not terminated", 5),
        ('Host("a\\qb")', "unknown escape sequence \\q", 7),
        ('Host("\\x4")', "invalid \\x escape", 6),
        ('Host("\\ud800")', "invalid Unicode code point", 6),
        ("Host(`a.com`", "'(' is never closed", 4),
        ("(Host(`a.com`)", "'(' is never closed", 0),
        ("Host(`a.com`))", "unexpected ')'", 13),
        ("Host(`a.com`) Path(`/`)", "expected &&, || or end of rule", 14),
        ("Host(`a.com`) &&", "expected a matcher", 16),
        ("", "empty rule", 0),
        ("   ", "empty rule", 3),
        ("Host(`a.com`)\n&& Path(`/`)", "expected &&, || or end of rule", 14),
        ("Host(\n`a.com`\n)", "missing ',' before newline", 13),
        ("Host(`a.com`) & Path(`/`)", "operator '&' is not supported", 14),
        ("Host(example)", "matcher arguments must be string literals", 5),
        ("Host(a.com)", "operator '.' is not supported", 6),
        ("Host(1)", "matcher arguments must be string literals", 5),
        ("Host", "is not a matcher call", 0),
        ("`a.com`", "bare string", 0),
        ("HostRegexp(`(a`)", "missing closing )", 12),
        ("PathRegexp(`/a(?=b)`)", "RE2 does not support lookahead", 14),
        ("PathRegexp(`(a)\\1`)", "RE2 does not support backreferences", 15),
        ("PathRegexp(`a**`)", "invalid nested repetition operator", 14),
        ("PathRegexp(`a{1001}`)", "invalid repeat count", 13),
        ("PathRegexp(`\\p{Old_Italic}`)", "invalid character class range", 12),
        ("Host(`caf\u00e9.com`)", "non-ASCII characters are not allowed", 9),
        ("Path(`css`)", "does not start with a '/'", 5),
        ("ClientIP(`1`)", 'invalid IP or CIDR "1"', 9),
    ],
)
def test_invalid_rules_raise_rule_error_at_the_fault(
    rule: str, message: str, position: int
) -> None:
    with pytest.raises(RuleError) as caught:
        compile_rule(rule)
    assert message in caught.value.reason
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("Headers(`X-A`)", "multiple of 2"),
        ("Query(`a`)", "multiple of 2"),
        ("Query(`a={x}`, `b={x}`)", "duplicated route variable x"),
        ("HostRegexp(`{sub.example.com`)", "unbalanced braces"),
        ("Path(`/{:[0-9]+}`)", "missing name or pattern"),
        ("Path(`/{id:a)(b}`)", "invalid regexp"),
        ("Header(`X`, `y`)", "unknown matcher"),  # v3 name, not in the v2 set
    ],
)
def test_v2_specific_errors(rule: str, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(")):
        compile_rule(rule, syntax="v2")


def test_error_message_shows_the_rule_with_a_caret() -> None:
    with pytest.raises(RuleError) as caught:
        compile_rule("Host(`a`) && Hots(`b`)")
    assert str(caught.value).splitlines()[1:] == [
        "    Host(`a`) && Hots(`b`)",
        "    " + " " * 13 + "^",
    ]


def test_rule_exposes_text_syntax_and_byte_length_priority() -> None:
    rule = compile_rule("Host(`caf.example`) && Path(`/caf\u00e9`)", syntax="v3")
    assert (rule.text, rule.syntax) == ("Host(`caf.example`) && Path(`/caf\u00e9`)", "v3")
    assert rule.priority == len(rule.text) + 1  # the é is two UTF-8 bytes
    assert compile_rule("Host(`example.org`)").priority == 19  # Traefik's TestGetRulePriority


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(RuleError, match="nested deeper"):
        compile_rule("(" * 500 + "Path(`/`)" + ")" * 500)
