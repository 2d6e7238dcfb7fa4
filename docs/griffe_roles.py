"""griffe extension (mkdocs.yml, the python handler's ``extensions``): Sphinx roles in docstrings read as code.

The docstrings cite other objects the Sphinx way, ``:func:`adapt_run``` or ``:class:`~taskgraph.errors.TaskgraphError```,
which Markdown would show with the role's name in front. Each becomes the code span ``adapt_run`` (a leading ``~``
dropped); a reference is not made a link, because most name an object relative to the docstring's module.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
