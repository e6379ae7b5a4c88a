"""A griffe extension for the API reference: Sphinx roles in the docstrings, as Markdown.

The package's docstrings are prose with ``double-backtick`` literals (valid Markdown code
spans) and a few Sphinx roles such as :class:`~traefikservice_asgi.MirrorLimits`, which
Markdown would show as ``:class:`` followed by the raw target. This rewrites each role
to a code span of the name a reader would write (the last component for a ``~`` target),
so the rendered reference reads as the source intends. The docstrings stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def rewrite_roles(text: str) -> str:
    """``:class:`~a.b.C``` -> ```C```; ``:func:`f``` -> ```f```."""
    return _ROLE.sub(_replace, text)


class SphinxRolesAsCode(Extension):
    """Rewrites the roles of every docstring once the object tree is complete."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite_roles(obj.docstring.value)
