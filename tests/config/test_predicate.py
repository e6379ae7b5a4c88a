"""circuitBreaker expressions: what oxy v2.1.0 with vulcand/predicate accepts (its tree)
and refuses (its message), including Go's precedence and reflection's type rules."""

from __future__ import annotations

import pytest

from traefikservice_asgi.config._predicate import (
    And,
    Compare,
    LatencyAtQuantileMS,
    NetworkErrorRatio,
    Or,
    PredicateError,
    ResponseCodeRatio,
    parse_predicate,
)

RATIO = NetworkErrorRatio()


def test_traefik_docs_expressions_parse_to_their_comparisons() -> None:
    assert parse_predicate("NetworkErrorRatio() > 0.30") == Compare(">", RATIO, 0.3)
    assert parse_predicate("ResponseCodeRatio(500, 600, 0, 600) > 0.25") == Compare(
        ">", ResponseCodeRatio(500, 600, 0, 600), 0.25
    )
    assert parse_predicate("LatencyAtQuantileMS(50.0) > 100") == Compare(
        ">", LatencyAtQuantileMS(50.0), 100
    )


def test_and_binds_tighter_than_or_and_parentheses_regroup() -> None:
    a, b, c = (f"NetworkErrorRatio() {op} 0.5" for op in (">", "<", "=="))
    pa, pb, pc = (parse_predicate(x) for x in (a, b, c))
    assert parse_predicate(f"{a} || {b} && {c}") == Or(pa, And(pb, pc))
    assert parse_predicate(f"({a} || {b}) && {c}") == And(Or(pa, pb), pc)
    assert parse_predicate(f"{a} && {b} && {c}") == And(And(pa, pb), pc)
    assert parse_predicate("(NetworkErrorRatio()) >= 0.5") == Compare(">=", RATIO, 0.5)


def test_go_literals_as_strconv_reads_them() -> None:
    assert parse_predicate("LatencyAtQuantileMS(.5e2) <= 010").value == 10  # Atoi: decimal
    assert parse_predicate("NetworkErrorRatio() != 0x1p-1").value == 0.5  # hex float


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("RequestThreshold() > 10", "unsupported function: RequestThreshold"),
        ("NetworkErrorRatio() > 1", "expected int, got int"),  # oxy's float64GT wording
        ("NetworkErrorRatio() == 1", "expected float64, got int"),
        ("LatencyAtQuantileMS(50.0) > 1.5", "expected int, got float64"),
        ("LatencyAtQuantileMS(50) > 100", "reflect: Call using int as type float64"),
        ("ResponseCodeRatio(500, 600, 0) > 0.5", "reflect: Call with too few input arguments"),
        ("NetworkErrorRatio(1) > 0.5", "reflect: Call with too many input arguments"),
        ("NetworkErrorRatio()", "expected predicate, got cbreaker.toFloat64"),
        ("0.5 < NetworkErrorRatio()", "lt: unsupported argument: float64"),
        ("!(NetworkErrorRatio() > 0.5)", "! is not supported"),
        ("NetworkErrorRatio() + 0.1 > 0.5", "+ is not supported"),
        ("NetworkErrorRatio() > -0.5", "- is not supported"),
        ("NetworkErrorRatio() > 0.5 && 1", "cannot use int as type cbreaker.hpredicate"),
        ("Ratio > 0.5", "Ratio is not defined"),
        ("m.Ratio() > 0.5", "unsupported function: m.Ratio"),
        ("ResponseCodeRatio((500), 600, 0, 600) > 0.5", "*ast.ParenExpr is not supported"),
        ("ResponseCodeRatio(0x1f4, 600, 0, 600) > 0.5", 'parsing "0x1f4": invalid syntax'),
        ("NetworkErrorRatio() > 0.5 ||", "expected operand"),
        ("", "expected operand"),
        ("LatencyAtQuantileMS(50.0) > 08", "invalid digit '8' in octal literal"),
        ("NetworkErrorRatio() > 0.5)", "expected 'EOF'"),
    ],
)
def test_an_expression_oxy_refuses_is_refused_with_its_message(
    expression: str, message: str
) -> None:
    with pytest.raises(PredicateError) as info:
        parse_predicate(expression)
    assert message in str(info.value)
