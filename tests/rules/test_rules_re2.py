"""Rule regexes run on RE2: linear time on hostile input, Go 1.26's Unicode classes.

The expected matches of the Unicode cases were observed on Traefik 3.7.15 (Go 1.26);
``tests/conformance/cases/rules-unicode-classes`` replays some of them against it.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.backends import RecordingBackend
from tests.support.gateway import serve_cli
from traefikservice_asgi.rules import RuleError, compile_rule
from traefikservice_asgi.rules._re2 import GoRegexp, compile_re2

#: Backtracking engines take 2**n steps on these; Go's RE2 and ours answer at once.
PATHOLOGICAL = "^/r/(a+)+$"
HOSTILE_PATH = "/r/" + "a" * 5000 + "!"
#: A bound for a process that must answer; never reached by RE2, which takes microseconds
#: (a backtracking engine needs longer than the universe has for 5000 characters). The
#: hostile input runs in another process: a backtracking match holds the GIL throughout,
#: so a thread of the test process would freeze the test itself.
LIVENESS_BOUND = 30.0
ROOT = Path(__file__).resolve().parents[2]

_HOSTILE_RULES = f"""
from traefikservice_asgi.rules import RequestView, compile_rule

def view(path="/", host="a.test", query=b"", x_a=""):
    return RequestView({{
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": query, "headers": [(b"host", host.encode()), (b"x-a", x_a.encode())],
    }})

a = "a" * 5000
for rule, syntax, request in [
    ("PathRegexp(`{PATHOLOGICAL}`)", "v3", view("{HOSTILE_PATH}")),
    ("HostRegexp(`^(a+)+$`)", "v3", view(host=a + "-")),
    ("HeaderRegexp(`X-A`, `^(a+)+$`)", "v3", view(x_a=a + "!")),
    ("QueryRegexp(`q`, `^(a+)+$`)", "v3", view(query=b"q=" + a.encode() + b"!")),
    ("Path(`/r/{{x:(a+)+}}`)", "v2", view("{HOSTILE_PATH}")),
    ("HeadersRegexp(`X-A`, `^(a+)+$`)", "v2", view(x_a=a + "!")),
]:
    print(rule.partition("(")[0], compile_rule(rule, syntax).matches(request))
"""


def test_rule_regexes_are_compiled_by_re2() -> None:
    regexp = compile_re2(PATHOLOGICAL)
    assert isinstance(regexp, GoRegexp)
    assert type(regexp._re).__module__.startswith("re2")


def test_pathological_regexes_answer_hostile_5000_character_values_in_every_matcher() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HOSTILE_RULES],
        capture_output=True,
        text=True,
        timeout=LIVENESS_BOUND,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert done.stdout.splitlines() == [
        "PathRegexp False",
        "HostRegexp False",
        "HeaderRegexp False",
        "QueryRegexp False",
        "Path False",
        "HeadersRegexp False",
    ]


def test_a_hostile_request_does_not_stall_the_gateway(tmp_path: Path) -> None:
    """Under uvicorn: the hostile path gets its 404 while a concurrent request is served."""
    config = tmp_path / "routes.yaml"
    config.write_text(
        "apiVersion: traefik.io/v1alpha1\n"
        "kind: IngressRoute\n"
        "metadata: {name: r, namespace: default}\n"
        "spec:\n"
        "  routes:\n"
        f"    - match: PathRegexp(`{PATHOLOGICAL}`)\n"
        "      services: [{name: app, port: 80}]\n"
    )
    with (
        RecordingBackend("app") as backend,
        serve_cli([str(config)], {"default/app:80": backend.url}) as url,
        httpx.Client(base_url=url, timeout=LIVENESS_BOUND) as client,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        hostile = pool.submit(client.get, HOSTILE_PATH)
        normal = pool.submit(client.get, "/r/aaa")
        assert hostile.result().status_code == 404
        assert normal.result().text == "Hello app\n"


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        (r"^\pL+$", "abc\u00e9", True),
        (r"^\pL+$", "a1", False),
        (r"^\pl$", "a", True),  # Go 1.25+: names are case-insensitive
        (r"^\p{Greek}+$", "\u03b1\u03b2", True),
        (r"^\p{greek}+$", "ab", False),
        (r"^\p{Letter}\p{nd}$", "\u00e97", True),
        (r"^\p{Lowercase_Letter}$", "A", False),
        (r"^\p{cased letter}$", "a", True),
        (r"^\p{Combining_Mark}$", "\u0301", True),
        (r"^\p{cntrl}$", "\x01", True),
        (r"^\pC$", "\u0378", True),  # Go's C holds the unassigned code points, RE2's not
        (r"^\pC$", "\x01", True),
        (r"^\PC$", "\u0378", False),
        (r"^\p{Cn}$", "\u0378", True),
        (r"^\p{Cn}$", "a", False),
        (r"^\p{Unassigned}$", "\u0378", True),
        (r"^\p{Assigned}$", "\u0378", False),
        (r"^\p{Assigned}$", "a", True),
        (r"^\p{^Greek}$", "a", True),
        (r"^\P{^Greek}$", "\u03b1", True),
        (r"^\p{Any}$", "\U0010ffff", True),
        (r"^[\pL\d]+$", "a1\u00e9", True),
        (r"^[\pC]$", "\u0378", True),
        (r"^[a\pC]$", "a", True),
        (r"^[^\pL]$", "a", False),
        (r"^[\P{LC}]$", "a", False),
        (r"(?i)^\p{ascii}$", "\u212a", True),  # the Kelvin sign folds to k
        (r"^\p{ascii}$", "\u212a", False),
        (r"(?i)^\W$", "\u212a", False),
        (r"(?i)^[^k]$", "\u212a", False),
        (r"(?i)^[^a]$", "A", False),
        (r"^.$", "\udcff", True),  # an invalid UTF-8 byte is U+FFFD to Go
        (r"^[^a]$", "\udcff", True),
        (r"^\x{FFFD}$", "\udcff", True),
        (r"^..$", "\udce2\udc82", True),  # one U+FFFD per invalid byte
        (r"\B", "", True),
        (r"(?P<a>x)(?P<a>y)", "xy", True),  # Go allows duplicate names, RE2 does not
    ],
)
def test_unicode_classes_and_invalid_bytes_match_as_in_go(
    pattern: str, subject: str, expected: bool
) -> None:
    assert compile_re2(pattern).search(subject) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        # Go 1.26 canonicalises names to "Xxxx": scripts written with _ or inner capitals
        # are not found (Traefik 3.7.15 refuses these rules), nor are Unicode 16 scripts.
        (r"\p{Old_Italic}", "invalid character class range: `\\p{Old_Italic}`"),
        (r"\p{SignWriting}", "invalid character class range: `\\p{SignWriting}`"),
        (r"\p{Todhri}", "invalid character class range: `\\p{Todhri}`"),
        (r"\p{L&}", "invalid character class range: `\\p{L&}`"),
        (r"\p{Greek", "invalid character class range: `\\p{Greek`"),
        (r"a\p", "invalid character class range: `\\p`"),
        (r"\C", "invalid escape sequence: `\\C`"),  # RE2 accepts it (any byte)
        (r"[^a\pC]", "cannot be expressed with RE2"),
        (r"\pL{1000}", "not supported by RE2"),
    ],
)
def test_unicode_classes_go_refuses_or_re2_cannot_express_are_refused(
    pattern: str, message: str
) -> None:
    with pytest.raises(RuleError, match="invalid regexp") as caught:
        compile_rule(f"PathRegexp(`{pattern}`)")
    assert message in caught.value.reason
