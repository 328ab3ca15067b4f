"""A griffe extension for the API reference: Sphinx roles in docstrings become inline code.

a2c_jax's docstrings are Google style but cross-reference with Sphinx roles
(``:class:`~a2c_jax.V```, ``:func:`compute_gae```), which Markdown would show verbatim. This
rewrites each role to inline code (``~a2c_jax.td_learning.SimpleTD`` shows as ``SimpleTD``), at
load time, without touching the source. Loaded by mkdocstrings (``extensions:`` in mkdocs.yml).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|obj|exc|const|term):`(~?)([^`]+)`")


def _code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def rewrite(text: str) -> str:
    """The docstring ``text`` with every Sphinx role replaced by inline code."""
    return _ROLE.sub(_code, text)


class SphinxRolesToCode(griffe.Extension):
    """Rewrites the docstring of every loaded object (modules, classes, functions, attributes)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
