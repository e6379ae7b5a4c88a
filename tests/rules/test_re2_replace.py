"""Go's ``FindSubmatchIndex``, ``Expand`` and ``ReplaceAllString`` on the RE2 translation
(cases from Go's ``regexp/all_test.go`` replaceTests)."""

from __future__ import annotations

import pytest

from traefikservice_asgi.rules._re2 import compile_re2


@pytest.mark.parametrize(
    ("pattern", "replacement", "subject", "expected"),
    [
        ("", "", "", ""),
        ("", "x", "", "x"),
        ("", "x", "abc", "xaxbxcx"),
        ("b", "x", "abc", "axc"),
        ("a*", "x", "baaac", "xbxcx"),
        ("a+", "x", "baaac", "bxc"),
        ("[a-c]*", "x", "def", "xdxexfx"),
        ("a(x*)b", "$1", "-ab-axxb-", "--xx-"),
        ("a(x*)b", "$1W", "-ab-axxb-", "---"),
        ("a(x*)b", "${1}W", "-ab-axxb-", "-W-xxW-"),
        ("a(?P<x>x*)b", "$x", "-ab-axxb-", "--xx-"),
        ("a(?P<x>x*)b", "${x}W", "-ab-axxb-", "-W-xxW-"),
        ("a(x*)b", "$$1", "-ab-axxb-", "-$1-$1-"),
        ("a(x*)b", "${1", "-ab-axxb-", "-${1-${1-"),
        ("a(x*)b", "$", "-ab-axxb-", "-$-$-"),
        ("a(x*)b", "$2", "-ab-axxb-", "---"),
        ("a(x*)b", "$01", "-ab-axxb-", "---"),
        ("(a)|(b)", "[$1$2]", "ab", "[a][b]"),
        ("(?P<n>a)|(?P<n>b)", "[$n]", "ab", "[a][b]"),
        ("^/api(/.*)?$", "/v2${1}", "/api/x", "/v2/x"),
        ("é", "e", "café", "cafe"),
        ("", "-", "é", "-é-"),
    ],
)
def test_replace_all_string_is_go_s(
    pattern: str, replacement: str, subject: str, expected: str
) -> None:
    regexp = compile_re2(pattern)
    assert regexp.replace_all(subject.encode(), replacement) == expected.encode()


def test_submatch_spans_are_bytes_and_a_missing_group_is_minus_one() -> None:
    regexp = compile_re2("a(b)?(?P<c>c)")
    assert regexp.submatch(b"xxac") == [(2, 4), (-1, -1), (3, 4)]
    assert regexp.names == ("", "", "c")
    assert regexp.submatch(b"xxa") is None


def test_submatch_from_a_position_still_sees_the_text_before_it() -> None:
    assert compile_re2("^a").submatch(b"aa", 1) is None
    assert compile_re2(r"\ba").submatch(b"aa", 1) is None
