"""oxy's buffer retry predicates: what parses (and into what), what oxy refuses."""

from __future__ import annotations

import pytest

from traefikservice_asgi.config._oxy_predicate import (
    And,
    Compare,
    NetworkError,
    Or,
    PredicateError,
    parse,
)


def test_and_binds_tighter_than_or_and_parentheses_regroup() -> None:
    a, b, c = NetworkError(), Compare("Attempts", "<", 2), Compare("ResponseCode", "==", 500)
    text = "IsNetworkError() || Attempts() < 2 && ResponseCode() == 500"
    assert parse(text) == Or(a, And(b, c))
    text = "(IsNetworkError() || Attempts() < 2) && ResponseCode() == 500"
    assert parse(text) == And(Or(a, b), c)
    assert parse('RequestMethod() != "POST"') == Compare("RequestMethod", "!=", "POST")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty expression"),
        ("Attempts()", "expected predicate"),
        ("IsNetworkError() && Tries() < 2", "unsupported function: Tries"),
        ("!IsNetworkError()", "unsupported operator: !"),
        ("2 > Attempts()", "unsupported argument"),
        ('Attempts() < "2"', "expected int"),
        ("RequestMethod() < 2", "unsupported argument"),
        ("IsNetworkError() &&", "unexpected"),
        ("IsNetworkError() Attempts()", "unexpected"),
        ("(IsNetworkError()", "expected '\\)'"),
    ],
)
def test_what_oxy_refuses_is_refused(text: str, why: str) -> None:
    with pytest.raises(PredicateError, match=why):
        parse(text)
