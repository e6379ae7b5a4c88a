"""Pacing points in configuration work: a thread's hook is called at each, only in that
thread and only while installed, and a large document reaches them node by node (also
while libyaml composes it), without changing what is loaded."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from traefikservice_asgi.config import load_config_text
from traefikservice_asgi.config._pacing import STEP, checkpoint, pacing, release
from traefikservice_asgi.config._yaml import parse_documents

ROUTES = 300
ONE_LARGE_DOCUMENT = (
    "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
    "metadata: {name: r, namespace: default}\nspec:\n  routes:\n"
    + "\n".join(
        f"    - match: Host(`h{i}.test`)\n      services: [{{name: a, port: 80}}]"
        for i in range(ROUTES)
    )
    + "\n"
)
BACKENDS = {"default/a:80": "http://127.0.0.1:9"}


def test_checkpoint_calls_the_hook_of_its_own_thread_only_while_installed() -> None:
    calls: list[str] = []

    def hook() -> None:
        calls.append(threading.current_thread().name)

    checkpoint()
    with pacing(hook):
        checkpoint()
        other = threading.Thread(target=checkpoint, name="other")
        other.start()
        other.join()
        checkpoint()
    checkpoint()
    assert calls == [threading.current_thread().name] * 2


def test_nested_pacing_restores_the_outer_hook() -> None:
    calls: list[str] = []
    with pacing(lambda: calls.append("outer")):
        with pacing(lambda: calls.append("inner")):
            checkpoint()
        checkpoint()
    assert calls == ["inner", "outer"]


def test_a_large_document_is_paced_node_by_node_while_composed_and_built() -> None:
    # Each route has 10 nodes (a mapping; match, its rule; services, a sequence of one
    # mapping; name, a; port, 80), each resolved while libyaml composes the document,
    # and 6 values visited while the data is built from the nodes.
    where: list[str] = []

    def hook() -> None:
        where.append(sys._getframe(2).f_code.co_name)

    with pacing(hook):
        (document,), problems = parse_documents(ONE_LARGE_DOCUMENT)
    assert problems == []
    assert len(document.data["spec"]["routes"]) == ROUTES
    assert where.count("resolve") >= 10 * ROUTES
    assert where.count("build") >= 6 * ROUTES


def paced_calls(work: Callable[[], object]) -> tuple[int, object]:
    """How many times ``work`` reaches a checkpoint, and what it returns."""
    calls = 0

    def hook() -> None:
        nonlocal calls
        calls += 1

    with pacing(hook):
        result = work()
    return calls, result


def test_a_paced_load_gives_the_same_configuration_and_paces_each_route() -> None:
    yaml_only, _ = paced_calls(lambda: parse_documents(ONE_LARGE_DOCUMENT))
    calls, paced = paced_calls(lambda: load_config_text(ONE_LARGE_DOCUMENT, backends=BACKENDS))
    assert paced == load_config_text(ONE_LARGE_DOCUMENT, backends=BACKENDS)
    # Beyond the YAML nodes: each route read (crd/ingressroute.py) and resolved.
    assert calls >= yaml_only + 2 * ROUTES


def test_release_empties_a_dict_and_a_list_a_step_at_a_time_last_first() -> None:
    popped: list[int] = []

    class Recording(dict[int, int]):
        def popitem(self) -> tuple[int, int]:
            item = super().popitem()
            popped.append(item[0])
            return item

    memo = Recording((i, i) for i in range(1000))
    items = list(range(1000))
    calls, _ = paced_calls(lambda: (release(memo), release(items)))
    assert memo == {} and items == []
    assert popped == list(range(999, -1, -1))
    assert calls == 2 * -(-1000 // STEP)


def test_documents_with_aliases_read_the_same_once_their_nodes_are_released() -> None:
    text = "a: &x {k: [1, 2], m: {n: v}}\nb: *x\nc: {<<: *x, z: 3}\n---\nd: &y [a, b]\ne: *y\n"
    documents, problems = parse_documents(text)
    assert problems == []
    assert [d.data for d in documents] == [
        {"a": {"k": [1, 2], "m": {"n": "v"}}, "b": {"k": [1, 2], "m": {"n": "v"}},
         "c": {"k": [1, 2], "m": {"n": "v"}, "z": 3}},
        {"d": ["a", "b"], "e": ["a", "b"]},
    ]  # fmt: skip
    assert documents[0].line_of(("c", "z")) == 3
