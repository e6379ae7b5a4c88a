"""Traefik router rules (``match:``), parsed and compiled once, matched per request.

```python
from traefikservice_asgi.rules import RequestView, compile_rule

rule = compile_rule("Host(`a.example.com`) && PathPrefix(`/api`)")
view = RequestView(scope)  # once per request, shared by every rule tried
if rule.matches(view):
    ...
```

``syntax="v3"`` (Traefik 3's default) or ``"v2"`` (the deprecated matcher set, kept by
Traefik 3 for ``syntax: v2`` routers). Every invalid rule raises ``RuleError`` with the
position of the fault; no other exception escapes ``compile_rule``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from traefikservice_asgi.exceptions import RuleError

from ._matchers import Predicate, Syntax, compile_node, host_key, required_hosts
from ._parser import parse_rule
from ._request import RequestView, absolute_form, forwarded_path

__all__ = [
    "RequestView",
    "Rule",
    "RuleError",
    "Syntax",
    "absolute_form",
    "compile_rule",
    "forwarded_path",
    "host_key",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule. ``priority`` is Traefik's default: the rule's length in bytes."""

    text: str
    syntax: Syntax
    priority: int
    _predicate: Predicate = field(repr=False, compare=False)
    #: The hosts (:func:`host_key`) one of which the request must have, or None: see
    #: :func:`required_hosts`.
    hosts: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def matches(self, view: RequestView) -> bool:
        """Whether the request behind ``view`` satisfies the rule."""
        return self._predicate(view)


def compile_rule(text: str, syntax: Syntax = "v3") -> Rule:
    """Parse and compile ``text``; raise ``RuleError`` if Traefik would reject it."""
    if syntax not in ("v3", "v2"):
        raise RuleError(f"unknown rule syntax {syntax!r} (expected 'v3' or 'v2')", text, 0)
    node = parse_rule(text)
    predicate = compile_node(text, node, syntax)
    # Go's len(rule) counts UTF-8 bytes; surrogatepass keeps this total for any str.
    priority = len(text.encode("utf-8", "surrogatepass"))
    return Rule(text, syntax, priority, predicate, required_hosts(node, syntax))
