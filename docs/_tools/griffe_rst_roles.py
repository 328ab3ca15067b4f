"""A griffe extension for the API reference: the reST in docstrings becomes Markdown.

a2c_jax's docstrings are Google style but keep two reST habits that Markdown would show verbatim:

- Sphinx roles (``:class:`~a2c_jax.V```, ``:func:`compute_gae```) become inline code
  (``~a2c_jax.td_learning.SimpleTD`` shows as ``SimpleTD``);
- a literal block announced by ``text::`` keeps its indented block (Markdown renders that as
  code) and loses one colon; a line of just ``::`` goes.

The rewrite happens at load time, without touching the source. Loaded by mkdocstrings
(``extensions:`` in mkdocs.yml).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|obj|exc|const|term):`(~?)([^`]+)`")


def _code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


_LITERAL = re.compile(r"(?<=\S)::[ \t]*$", re.M)
_BARE_LITERAL = re.compile(r"^[ \t]*::[ \t]*\n", re.M)


def rewrite(text: str) -> str:
    """The docstring ``text`` with Sphinx roles as inline code and reST's ``::`` markers gone."""
    text = _ROLE.sub(_code, text)
    text = _BARE_LITERAL.sub("", text)
    return _LITERAL.sub(":", text)


class SphinxRolesToCode(griffe.Extension):
    """Rewrites the docstring of every loaded object (modules, classes, functions, attributes)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
