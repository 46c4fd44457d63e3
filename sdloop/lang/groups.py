"""The groups of a Vensim file: ``.Name`` headers between lines of asterisks.

Vensim files may sort their equations into groups::

    ********************************************************
        .Policy supply
    ********************************************************~
        comment
        |

Every equation after such a header belongs to that group until the next one. Diagrams draw
one view per group. XMILE files and files without headers have no groups.
"""

from __future__ import annotations

import re
from pathlib import Path

from sdloop.lang.equations import read_text, split_equations
from sdloop.lang.names import normalize

GROUP_HEADER = re.compile(r"^\*{3,}[ \t]*\r?\n[ \t]*\.([^\n]+?)[ \t]*\r?\n\*{3,}", re.MULTILINE)


def variable_groups(path: str | Path) -> dict[str, str]:
    """Normalized variable name -> its group's name (empty for XMILE or a file without groups)."""
    path = Path(path)
    if path.suffix.lower() != ".mdl":
        return {}
    text = read_text(path)
    headers = [(text.count("\n", 0, m.start()) + 1, m.group(1).strip()) for m in GROUP_HEADER.finditer(text)]
    if not headers:
        return {}
    groups = {}
    for eq in split_equations(path, text):
        before = [name for line, name in headers if line <= eq.line]
        if before:
            groups[normalize(eq.name)] = before[-1]
    return groups
