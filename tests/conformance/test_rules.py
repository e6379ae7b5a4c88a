"""Router rules match exactly what Traefik 3.7.15 matches (scenarios/rules.yaml).

Every route has its own backend, named after it; each case below names the backend the
oracle is expected to answer with (``None``: no route, ``404 page not found``). Each test
checks those expectations against Traefik, then compares our gateway request by request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conformance.runner import (
    BothRuns,
    Request,
    assert_same_headers,
    assert_same_response_headers,
    assert_same_responses,
    requires_traefik,
    run_both,
)

pytestmark = requires_traefik

SCENARIO = Path(__file__).with_name("scenarios") / "rules.yaml"
ROUTES = yaml.safe_load(SCENARIO.read_text())["spec"]["routes"]
BACKENDS = {f"default/{r['services'][0]['name']}:80": r["services"][0]["name"] for r in ROUTES}

R = Request.make
CASES: dict[str, list[tuple[Request, str | None]]] = {
    "host": [
        (R("case.test"), "r-host"),
        (R("CASE.TEST:8080"), "r-host"),
        (R("case.test."), "r-host"),
        (R("a.wild.test"), "r-wild"),
        (R("A.Wild.Test"), "r-wild"),
        (R("wild.test"), None),
        (R("a.b.wild.test"), None),
        (R("api-12.regexp.test"), "r-hostregexp"),
        (R("api-x.regexp.test"), None),
        (R("my-unanchored-host.test"), "r-unanchored"),
    ],
    "path": [
        (R("path.test", "/exact"), "r-path"),
        (R("path.test", "/exact/"), None),
        (R("path.test", "/exact?q=1"), "r-path"),
        (R("path.test", "/Exact"), None),
        (R("prefix.test", "/api"), "r-prefix"),
        (R("prefix.test", "/api/v1"), "r-prefix"),
        (R("prefix.test", "/apix"), "r-prefix"),
        (R("prefix.test", "/ap"), None),
        (R("pathre.test", "/items/42"), "r-pathregexp"),
        (R("pathre.test", "/items/4%32"), "r-pathregexp"),
        (R("pathre.test", "/items/42/x"), None),
        (R("pathre.test", "/items/x"), None),
    ],
    "method and headers": [
        (R("method.test", method="POST", body=b"x"), "r-post"),
        (R("method.test"), "r-any-method"),
        (R("method.test", method="PUT"), "r-any-method"),
        (R("header.test", headers={"x-env": "canary"}), "r-header"),
        (R("header.test", headers=[("X-Env", "stable"), ("X-Env", "canary")]), "r-header"),
        (R("header.test", headers={"X-Env": "Canary"}), None),
        (R("headerre.test", headers={"User-Agent": "curl/8.1.2"}), "r-headerregexp"),
        (R("headerre.test", headers={"User-Agent": "Mozilla/5.0 curl/8"}), None),
    ],
    "query": [
        (R("query.test", "/?debug=1"), "r-query"),
        (R("query.test", "/?a=2&debug=0&debug=1"), "r-query"),
        (R("query.test", "/?debug=10"), None),
        (R("queryre.test", "/?id=123"), "r-queryregexp"),
        (R("queryre.test", "/?id=12a"), None),
        (R("flag.test", "/?flag"), "r-query-flag"),
        (R("flag.test", "/?flag="), "r-query-flag"),
        (R("flag.test", "/?flag=on"), None),
    ],
    "client ip": [
        (R("ip.test", source="127.0.0.2"), "r-clientip"),
        (R("ip.test", source="127.0.0.3"), "r-clientip"),
        (R("ip.test", source="127.0.0.4"), None),
        (R("ip.test", source="127.0.0.9"), "r-clientip-one"),
        (R("ip.test"), None),
    ],
    "operators": [
        (R("bool.test", "/a"), "r-bool"),
        (R("bool.test", "/b/c", method="POST"), "r-bool"),
        (R("bool.test", "/a", method="DELETE"), None),
        (R("bool.test", "/c"), None),
        (R("prec.test", "/x"), "r-precedence"),
        (R("elsewhere.test", "/only-path"), "r-precedence"),  # && binds tighter than ||
        (R("elsewhere.test", "/x"), None),
        (R("quoted.test", "/abc"), "r-quoted"),
        (R("upper.test", "/anything"), "r-matcher-case"),
    ],
    "priority": [
        (R("prio.test", "/special"), "r-prio-explicit"),
        (R("prio.test"), "r-prio-explicit"),
        (R("len.test", "/deep/er"), "r-len-long"),
        (R("len.test", "/shallow"), "r-len-short"),
    ],
    "v2 syntax": [
        (R("v2a.test"), "r-v2-hosts"),
        (R("V2B.test:81"), "r-v2-hosts"),
        (R("v2c.test"), None),
        (R("abc.v2.test", headers={"X-V": "2"}), "r-v2-regexp"),
        (R("abc.v2.test"), None),
        (R("ab1.v2.test", headers={"X-V": "2"}), None),
    ],
    "unmatched": [(R("nobody.test"), None), (R("", "/"), None)],
}
SCRIPT = [request for cases in CASES.values() for request, _ in cases]


def indexes(topic: str) -> range:
    start = 0
    for name, cases in CASES.items():
        if name == topic:
            return range(start, start + len(cases))
        start += len(cases)
    raise KeyError(topic)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BothRuns:
    return run_both([SCENARIO], SCRIPT, BACKENDS, tmp_path=tmp_path_factory.mktemp("rules"))


@pytest.mark.parametrize("topic", list(CASES))
def test_rules_match_the_same_route_as_traefik(runs: BothRuns, topic: str) -> None:
    where = indexes(topic)
    expected = [backend for _, backend in CASES[topic]]
    observed = [runs.traefik.observations[i] for i in where]
    assert [o.backend for o in observed] == expected  # the oracle
    assert all(o.body == b"404 page not found\n" for o in observed if o.backend is None)
    assert all(o.status == (200 if o.backend else 404) for o in observed)
    assert_same_responses(runs.traefik, runs.gateway, where)
    assert_same_response_headers(runs.traefik, runs.gateway, where)


def test_matched_requests_are_forwarded_identically(runs: BothRuns) -> None:
    assert_same_headers(runs.traefik, runs.gateway)
