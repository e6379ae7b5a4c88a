"""Every data-driven scenario under ``cases/`` behaves as in Traefik 3.7.15.

One test per case directory (the test id is the directory's name): the case's
``routes.yaml`` runs on the real Traefik (translated to its file provider) and on our
gateway, the ``script.yaml`` requests are sent to both, and each group of requests is
compared as the script says (``exact``, ``counts`` or ``served-by-any``; see
``cases/README.md``). A case with ``known_difference`` is expected to fail (strict xfail):
it documents a difference still to be fixed in the gateway.

The harness tests at the end prove that the form catches what would make a scenario pass
vacuously: typos, empty scripts, a run in which Traefik only answered 404.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.cases.form import (
    UNSET,
    Case,
    Expect,
    Group,
    ScriptError,
    case_directories,
    load_case,
)
from tests.conformance.runner import (
    BothRuns,
    Observation,
    Request,
    TargetRun,
    assert_same_headers,
    assert_same_received,
    assert_same_response_headers,
    assert_same_responses,
    requires_traefik,
    run_both,
    run_traefik,
)
from tests.support.backends import RecordedRequest

CASES = Path(__file__).with_name("cases")
NOT_FOUND = (404, b"404 page not found\n")
UNUSED_URL = "http://127.0.0.1:9"


def _case_params() -> list[Any]:
    params = []
    for directory in case_directories(CASES):
        marks: list[Any] = []
        try:
            reason = load_case(directory).known_difference
        except ScriptError:
            reason = None  # the test reports the error
        if reason:
            marks.append(
                pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"known: {reason}")
            )
        params.append(pytest.param(directory, id=directory.name, marks=marks))
    return params


@requires_traefik
@pytest.mark.parametrize("directory", _case_params())
def test_case_behaves_as_traefik(directory: Path, tmp_path: Path) -> None:
    case = load_case(directory)
    if case.gateway_refuses is not None:
        check_refused(case, tmp_path)
        return
    from traefikservice_asgi import ConfigError

    try:
        runs = run_both(
            [case.routes],
            case.requests,
            case.backends,
            tmp_path=tmp_path,
            allow_router_errors=case.allow_router_errors,
            allow_cross_namespace=case.allow_cross_namespace,
            settle_cap=case.settle_cap,
            actions=case.actions,
            addresses=case.addresses,
        )
    except ConfigError as exc:  # Traefik ran: the configuration is one it serves
        raise AssertionError(f"the gateway refused what Traefik serves:\n{exc}") from exc
    check_case(case, runs)


# -- checking one case --------------------------------------------------------------------------


def check_case(case: Case, runs: BothRuns) -> None:
    """Everything ``script.yaml`` asks for, Traefik (the oracle) first."""
    runs = BothRuns(
        server_cookies_named(forwarded_cookies_renamed(runs.traefik)),
        server_cookies_named(runs.gateway),
    )
    check_not_vacuous(case, runs.traefik)
    for run in (runs.traefik, runs.gateway):
        check_expectations(case, run)
    for group in case.groups:
        compare_group(group, runs.traefik, runs.gateway)


def check_refused(case: Case, tmp_path: Path) -> None:
    """``gateway_refuses``: Traefik serves what it can (checked against the expectations)
    while our gateway refuses the configuration at load time (a documented difference)."""
    from traefikservice_asgi import ConfigError, create_app

    traefik = run_traefik(
        [case.routes],
        case.requests,
        case.backends,
        tmp_path=tmp_path,
        allow_router_errors=True,
        allow_cross_namespace=case.allow_cross_namespace,
        settle_cap=case.settle_cap,
        actions=case.actions,
    )
    check_not_vacuous(case, traefik)
    check_expectations(case, traefik)
    with pytest.raises(ConfigError) as caught:
        create_app(
            config=[case.routes],
            backends=dict.fromkeys(case.backends, UNUSED_URL),
            allow_cross_namespace=case.allow_cross_namespace,
            allow_external_name_services=True,  # as run_both's gateway
        )
    if str(case.gateway_refuses) not in str(caught.value):
        raise AssertionError(
            f"the gateway refused the configuration, but not with {case.gateway_refuses!r}:\n"
            f"{caught.value}"
        )


def server_cookies_named(run: TargetRun) -> TargetRun:
    """``run`` with every sticky cookie value that pins a server (``sha256(url)[:16]``)
    written ``<server:NAME>``: each target has its own backends on their own ephemeral
    ports, so the same server has a different URL, hence cookie value, in each run."""
    names = {
        _cookie_value(f"http://127.0.0.1:{port}"): f"<server:{placeholder[9:-1]}>"
        for port, placeholder in run.ports.items()
        if placeholder.startswith("<backend:")
    }
    if not names:
        return run
    pattern = re.compile("|".join(map(re.escape, names)))

    def rename(cookies: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(pattern.sub(lambda m: names[m.group(0)], cookie) for cookie in cookies)

    observations = [
        dataclasses.replace(o, set_cookies=rename(o.set_cookies)) for o in run.observations
    ]
    return dataclasses.replace(run, observations=observations)


def forwarded_cookies_renamed(traefik: TargetRun) -> TargetRun:
    """``traefik`` with the default (hashed) sticky cookie names in the ``Cookie`` headers
    its backends received mapped back to ours, as the runner does for ``Set-Cookie``."""
    renames: dict[str, str] = traefik.extra.get("cookie_renames") or {}
    if not renames:
        return traefik

    def rename(value: str) -> str:
        pairs = [pair.strip().partition("=") for pair in value.split(";")]
        return "; ".join(f"{renames.get(name, name)}{sep}{rest}" for name, sep, rest in pairs)

    received = {
        backend: [
            dataclasses.replace(
                request,
                headers=tuple(
                    (name, rename(value) if name.lower() == "cookie" else value)
                    for name, value in request.headers
                ),
            )
            for request in requests
        ]
        for backend, requests in traefik.received.items()
    }
    return dataclasses.replace(traefik, received=received)


def _cookie_value(child: str) -> str:
    return hashlib.sha256(child.encode()).hexdigest()[:16]


def check_not_vacuous(case: Case, traefik: TargetRun) -> None:
    answers = [(o.status, o.body) for o in traefik.observations]
    all_404 = all(answer == NOT_FOUND for answer in answers)
    if all_404 and not case.expect_all_404:
        raise AssertionError(
            f"{case.name}: Traefik answered every request with 404 page not found: no route "
            "loaded or matched, and comparing two 404s proves nothing (translated config: "
            f"{traefik.extra.get('skipped') or 'nothing skipped'}); "
            "write expect_all_404: true if 404s are the point"
        )
    if case.expect_all_404 and not all_404:
        first = next(i for i, answer in enumerate(answers) if answer != NOT_FOUND)
        raise AssertionError(
            f"{case.name}: expect_all_404, but Traefik answered request index {first} "
            f"with {answers[first]}"
        )


def _who(run: TargetRun) -> str:
    return "traefik (the oracle)" if run.target == "traefik" else run.target


def check_expectations(case: Case, run: TargetRun) -> None:
    expects = dict(case.expects)
    if run.target != "traefik":
        expects.update(case.expects_gateway)  # a documented difference, pinned per target
    for index, expect in sorted(expects.items()):
        check_expect(expect, run, index)
    for group in case.groups:
        check_group_expectations(group, run)


def check_expect(expect: Expect, run: TargetRun, index: int) -> None:
    seen = run.observations[index]
    actual = {
        "status": seen.status,
        "backend": seen.backend,
        "body": seen.body,
        "set_cookie": seen.set_cookies,
    }
    if expect.same_backend_as is not UNSET:
        actual["same_backend_as"] = seen.backend
    if expect.headers is not UNSET:
        actual["headers"] = {
            name: ", ".join(v for k, v in seen.headers if k == name) or None
            for name in expect.headers
        }
    for what, value in actual.items():
        wanted = getattr(expect, what)
        if what == "same_backend_as" and wanted is not UNSET:
            wanted = run.observations[wanted].backend
        if wanted is not UNSET and value != wanted:
            raise AssertionError(
                f"{_who(run)}: request index {index} ({run.requests[index].describe()}): "
                f"expected {what} {wanted!r}, got {value!r}"
            )


def check_group_expectations(group: Group, run: TargetRun) -> None:
    observed = _observed(run, group)
    if group.expect_backends is not None:
        counts = Counter(o.backend for o in observed)
        if counts != Counter(group.expect_backends):
            raise AssertionError(
                f"{_who(run)}: {group.where}: expected the answering backends "
                f"{dict(group.expect_backends)}, got {dict(counts)}"
            )
    for backend, positions in (group.expect_received or {}).items():
        got = _positions(run, backend, group.indexes)
        if got != list(positions):
            raise AssertionError(
                f"{_who(run)}: {group.where}: expected {backend!r} to receive the group's "
                f"requests {list(positions)} (1-based), it received {got}"
            )


def _observed(run: TargetRun, group: Group) -> list[Observation]:
    return run.observations[group.indexes.start : group.indexes.stop]


def _positions(run: TargetRun, backend: str, indexes: range) -> list[int]:
    """1-based positions, within ``indexes``, of the script requests ``backend`` received."""
    return [i - indexes.start + 1 for i in run.indexes(backend) if i in indexes]


def only(run: TargetRun, indexes: range) -> TargetRun:
    """``run`` with the backends' receipts limited to the script ``indexes`` (health probes,
    which have no index, left out too)."""
    others = {-1, *range(len(run.observations))} - set(indexes)
    return run.without(others)


# -- the comparison modes -------------------------------------------------------------------------


def compare_group(group: Group, traefik: TargetRun, gateway: TargetRun) -> None:
    try:
        if group.compare == "exact":
            compare_exact(group, traefik, gateway)
        elif group.compare == "counts":
            compare_counts(group, traefik, gateway)
        else:
            compare_served_by_any(group, traefik, gateway)
    except AssertionError as exc:
        raise AssertionError(f"{group.where} (compare: {group.compare}): {exc}") from None


def compare_exact(group: Group, traefik: TargetRun, gateway: TargetRun) -> None:
    """Request by request: the answers (status, backend, Set-Cookie, body, and the response
    headers; not those pinned per target by ``expect_gateway``), then what every backend
    received (mirrors included) and its headers."""
    indexes = [i for i in group.indexes if i not in group.answers_differ]
    assert_same_responses(traefik, gateway, indexes)
    if group.response_headers:
        # Set-Cookie is compared above, with Traefik's default cookie names mapped to ours.
        ignore = ("date", "set-cookie", *group.ignore_response_headers)
        assert_same_response_headers(traefik, gateway, indexes, ignore=ignore)
    theirs, ours = only(traefik, group.indexes), only(gateway, group.indexes)
    if group.difference is not None:
        for backend in group.difference.backends:
            if theirs.indexes(backend) != ours.indexes(backend):
                raise AssertionError(
                    f"backend {backend!r} (documented difference: only which requests it "
                    f"receives is compared): traefik {theirs.indexes(backend)}, "
                    f"gateway {ours.indexes(backend)}"
                )
            theirs = theirs.without(group.indexes, backend)
            ours = ours.without(group.indexes, backend)
    assert_same_received(theirs, ours)
    if group.headers:
        assert_same_headers(theirs, ours)


def compare_counts(group: Group, traefik: TargetRun, gateway: TargetRun) -> None:
    """For ties Traefik breaks at random: the same answers in any order (each with its
    status, backend, Set-Cookie and body), the same number of requests per backend, and,
    with ``cycle``, every window of one full cycle serving each backend ``weight`` times."""
    for run in (traefik, gateway):
        if group.cycle is not None:
            check_cycles(group, run)
    answers = [
        Counter((o.status, o.backend, o.set_cookies, o.body) for o in _observed(run, group))
        for run in (traefik, gateway)
    ]
    if answers[0] != answers[1]:
        raise AssertionError(
            f"different answers\n  only from traefik: {dict(answers[0] - answers[1])}\n"
            f"  only from gateway: {dict(answers[1] - answers[0])}"
        )
    received = [
        {name: len(only(run, group.indexes).indexes(name)) for name in run.received}
        for run in (traefik, gateway)
    ]
    if received[0] != received[1]:
        raise AssertionError(
            f"backends received different numbers of requests\n  traefik: {received[0]}\n"
            f"  gateway: {received[1]}"
        )


def check_cycles(group: Group, run: TargetRun) -> None:
    assert group.cycle is not None
    length = sum(group.cycle.values())
    backends = [o.backend for o in _observed(run, group)]
    for start in range(0, len(backends), length):
        window = Counter(backends[start : start + length])
        if window != Counter(group.cycle):
            first = group.indexes.start + start
            raise AssertionError(
                f"{_who(run)}: requests {first}..{first + length - 1} are not one cycle "
                f"{dict(group.cycle)}: {dict(window)} (all: {backends})"
            )


def compare_served_by_any(group: Group, traefik: TargetRun, gateway: TargetRun) -> None:
    """For a genuinely random pick: the same status per request, each answered by one of
    ``any_of``."""
    assert group.any_of is not None
    for index in group.indexes:
        theirs, ours = traefik.observations[index], gateway.observations[index]
        if theirs.status != ours.status:
            raise AssertionError(
                f"request index {index}: status traefik {theirs.status}, gateway {ours.status}"
            )
        for run, seen in ((traefik, theirs), (gateway, ours)):
            if seen.backend not in group.any_of:
                raise AssertionError(
                    f"{_who(run)}: request index {index} answered by {seen.backend!r}, "
                    f"not one of {sorted(group.any_of)}"
                )


# -- the form itself (no Traefik needed) ----------------------------------------------------------

ROUTES = """\
# A route to one Service.
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
    - match: Host(`a.test`)
      services: [{name: app, port: 80}]
"""


def write_case(root: Path, script: str, routes: str = ROUTES, name: str = "c") -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "routes.yaml").write_text(routes)
    (directory / "script.yaml").write_text(textwrap.dedent(script))
    return directory


def test_every_case_directory_loads() -> None:
    problems = []
    for directory in case_directories(CASES):
        try:
            load_case(directory)
        except ScriptError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_a_typo_in_a_script_fails_naming_the_file_and_the_key(tmp_path: Path) -> None:
    directory = write_case(
        tmp_path,
        """\
        backends: {default/app:80: app}
        steps:
          - requests: [{hots: a.test}]
            compare: exact
          - requests: [{host: a.test, expect: {staus: 200}}]
            comapre: counts
        """,
    )
    with pytest.raises(ScriptError) as caught:
        load_case(directory)
    script = directory / "script.yaml"
    assert str(caught.value).splitlines() == [
        f"{script}: steps[0].requests[0].hots: unknown key (known: background, body, "
        "chunked, cookies, cookies_from, digest, expect, expect_gateway, headers, host, id, "
        "method, path, repeat, source)",
        f"{script}: steps[0].requests[0].host: is required",
        f"{script}: steps[1].comapre: unknown key (known: any_of, compare, cycle, "
        "documented_difference, expect_backends, expect_received, headers, "
        "ignore_response_headers, requests, response_headers)",
        f"{script}: steps[1].requests[0].expect.staus: unknown key (known: backend, body, "
        "headers, same_backend_as, set_cookie, status)",
    ]


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("backends: {default/app:80: app}\nsteps: []\n", "steps: must send at least one request"),
        (
            "backends: {default/app:80: app}\nsteps: [{sleep: 0.1}]\n",
            "steps: must send at least one request",
        ),
        (
            "backends: {default/app:80: app}\nsteps: [{wait_for_probes: {backend: ap}}, "
            "{requests: [{host: a.test}]}]\n",
            "steps[0].wait_for_probes.backend: no backend named 'ap' in `backends`",
        ),
        (
            "backends: {default/app:80: app}\n"
            "steps: [{requests: [{host: a.test, cookies_from: first}]}]\n",
            "steps[0].requests[0].cookies_from: no earlier request has id 'first'",
        ),
        (
            "backends: {default/app:80: app}\n"
            "steps: [{requests: [{host: a.test, digest: {user: u, password: p}}]}]\n",
            "steps[0].requests[0].digest.from: is required",
        ),
        (
            "backends: {default/app:80: app}\naddresses: {'http://auth.test': nobody}\n"
            "steps: [{requests: [{host: a.test}]}]\n",
            "addresses.http://auth.test: names no backend of `backends`",
        ),
        (
            "backends: {default/app:80: app}\n"
            "steps: [{requests: [{host: a.test, repeat: 3}], compare: counts, "
            "cycle: {app: 2}}]\n",
            "steps[0].cycle: the group's 3 requests are not whole cycles of 2",
        ),
        (
            "backends: {default/app:80: app}\n"
            "steps: [{requests: [{host: a.test}], compare: served-by-any}]\n",
            "steps[0].any_of: is required with compare: served-by-any",
        ),
        ("backends: {app: app}\nsteps: [{requests: [{host: a.test}]}]\n", "backends.app: must"),
        (
            "backends: {default/app:80: app}\n"
            "steps: [{requests: [{host: a.test, id: bg, background: true}, "
            "{host: a.test, cookies_from: bg}]}]\n",
            "steps[0].requests[1].cookies_from: names a background request (no answer yet)",
        ),
    ],
    ids=[
        "no-steps",
        "no-request",
        "unknown-backend",
        "unknown-id",
        "digest-without-challenge",
        "address-of-no-backend",
        "broken-cycle",
        "any-of-missing",
        "bad-backend-key",
        "cookies-of-a-background-request",
    ],
)
def test_a_script_that_could_pass_vacuously_is_refused(
    tmp_path: Path, script: str, problem: str
) -> None:
    with pytest.raises(ScriptError, match=re.escape("script.yaml: " + problem)):
        load_case(write_case(tmp_path, script))


def test_routes_must_open_with_a_comment_saying_what_they_show(tmp_path: Path) -> None:
    directory = write_case(
        tmp_path,
        "backends: {default/app:80: app}\nsteps: [{requests: [{host: a.test}]}]\n",
        routes=ROUTES.split("\n", 1)[1],
    )
    with pytest.raises(ScriptError, match=r"routes\.yaml: must open with a comment"):
        load_case(directory)


def _fake_runs(case: Case, traefik: list[tuple[int, str | None]], gateway: Any = None) -> BothRuns:
    def run(target: str, answers: list[tuple[int, str | None]]) -> TargetRun:
        observations = [
            Observation(i, status, b"404 page not found\n" if status == 404 else b"ok", backend, ())
            for i, (status, backend) in enumerate(answers)
        ]
        received: dict[str, list[RecordedRequest]] = {}
        for i, (_, backend) in enumerate(answers):
            if backend:
                headers = (("X-Request-Index", str(i)),)
                received.setdefault(backend, []).append(
                    RecordedRequest("GET", "/", "", headers, b"")
                )
        return TargetRun(target, case.requests, observations, received)

    return BothRuns(run("traefik", traefik), run("gateway", gateway or traefik))


def test_a_case_where_traefik_answered_only_404_fails_unless_the_script_expects_it(
    tmp_path: Path,
) -> None:
    script = "backends: {default/app:80: app}\nsteps: [{requests: [{host: b.test, repeat: 2}]}]\n"
    case = load_case(write_case(tmp_path, script))
    runs = _fake_runs(case, [(404, None)] * 2)
    with pytest.raises(AssertionError, match="every request with 404"):
        check_case(case, runs)
    check_case(dataclasses.replace(case, expect_all_404=True), runs)


def test_counts_compares_answers_in_any_order_and_every_cycle_window(tmp_path: Path) -> None:
    script = """\
    backends: {default/app:80: [a, b]}
    steps:
      - requests: [{host: a.test, repeat: 4}]
        compare: counts
        cycle: {a: 1, b: 1}
    """
    case = load_case(write_case(tmp_path, script))
    check_case(case, _fake_runs(case, [(200, "a"), (200, "b")] * 2, [(200, "b"), (200, "a")] * 2))
    with pytest.raises(AssertionError, match=r"requests 0\.\.1 are not one cycle"):
        check_case(
            case,
            _fake_runs(case, [(200, "a"), (200, "b")] * 2, [(200, "a")] * 2 + [(200, "b")] * 2),
        )


def test_expectations_are_checked_against_the_oracle_first(tmp_path: Path) -> None:
    script = """\
    backends: {default/app:80: app}
    steps:
      - requests: [{host: a.test, expect: {status: 503}}]
    """
    case = load_case(write_case(tmp_path, script))
    with pytest.raises(AssertionError, match=r"traefik \(the oracle\): request index 0 .*503"):
        check_case(case, _fake_runs(case, [(200, "app")]))


def test_cookies_from_sends_the_cookies_an_earlier_answer_set(tmp_path: Path) -> None:
    script = """\
    backends: {default/app:80: app}
    steps:
      - requests:
          - {host: a.test, id: first}
          - {host: a.test, cookies: {extra: "1"}, cookies_from: first}
    """
    case = load_case(write_case(tmp_path, script))
    assert case.requests[1] == Request.make("a.test", cookies={"extra": "1"}, cookies_from=0)


def test_exact_compares_every_answer_and_what_each_backend_received(tmp_path: Path) -> None:
    script = """\
    backends: {default/app:80: [a, b]}
    steps:
      - requests: [{host: a.test, repeat: 2}]
    """
    case = load_case(write_case(tmp_path, script))
    check_case(case, _fake_runs(case, [(200, "a"), (200, "b")]))
    with pytest.raises(AssertionError, match=r"request index 1 .*backend differs"):
        check_case(case, _fake_runs(case, [(200, "a"), (200, "b")], [(200, "a"), (200, "a")]))


def test_a_documented_difference_still_compares_which_requests_a_backend_got(
    tmp_path: Path,
) -> None:
    script = """\
    backends: {default/app:80: app, default/copy:80: copy}
    steps:
      - requests: [{host: a.test, repeat: 2}]
        documented_difference: {backends: [copy], reason: "README: mirrorBody false"}
    """
    case = load_case(write_case(tmp_path, script))
    runs = _fake_runs(case, [(200, "app")] * 2)
    mirrored = RecordedRequest("POST", "/", "", (("X-Request-Index", "0"),), b"x", complete=False)
    runs.traefik.received["copy"] = [mirrored]
    runs.gateway.received["copy"] = [dataclasses.replace(mirrored, body=b"", complete=True)]
    check_case(case, runs)  # what the copy received differs: not compared
    runs.gateway.received["copy"] = [
        dataclasses.replace(mirrored, headers=(("X-Request-Index", "1"),))
    ]
    with pytest.raises(AssertionError, match="only which requests it receives is compared"):
        check_case(case, runs)


def test_expect_gateway_pins_each_targets_answer_instead_of_comparing_them(
    tmp_path: Path,
) -> None:
    script = """\
    backends: {default/app:80: app}
    steps:
      - requests:
          - {host: a.test, expect: {status: 404}, expect_gateway: {status: 503}}
          - {host: a.test, expect: {status: 200}}
        documented_difference: {reason: "docs/differences.md: no ready endpoint"}
    """
    case = load_case(write_case(tmp_path, script))
    check_case(case, _fake_runs(case, [(404, None), (200, "app")], [(503, None), (200, "app")]))
    with pytest.raises(AssertionError, match=r"gateway: request index 0 .*expected status 503"):
        check_case(case, _fake_runs(case, [(404, None), (200, "app")]))


@pytest.mark.parametrize(
    ("requests", "group", "problem"),
    [
        (
            "[{host: a.test, expect: {status: 404}, expect_gateway: {status: 503}}]",
            "",
            "steps[0].documented_difference: is required when a request has expect_gateway",
        ),
        (
            "[{host: a.test, expect_gateway: {status: 503}}]",
            ", documented_difference: {reason: docs/differences.md says so}",
            "steps[0].requests[0].expect_gateway: needs `expect` beside it",
        ),
        (
            "[{host: a.test}]",
            ", documented_difference: {reason: docs/differences.md says so}",
            "steps[0].documented_difference: documents nothing",
        ),
    ],
    ids=["no-documented-difference", "no-expect", "difference-of-nothing"],
)
def test_a_per_target_expectation_must_be_documented_and_pin_both_sides(
    tmp_path: Path, requests: str, group: str, problem: str
) -> None:
    script = f"backends: {{default/app:80: app}}\nsteps: [{{requests: {requests}{group}}}]\n"
    with pytest.raises(ScriptError, match=re.escape("script.yaml: " + problem)):
        load_case(write_case(tmp_path, script))


def test_the_readme_example_is_the_case_it_shows() -> None:
    readme = (CASES / "README.md").read_text()
    example = readme.split("## A complete example: `", 1)[1]
    name = example.split("/`", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", example, flags=re.DOTALL)[:2]
    assert blocks == [
        (CASES / name / "routes.yaml").read_text(),
        (CASES / name / "script.yaml").read_text(),
    ]
