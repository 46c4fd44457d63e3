"""Where keys stand in a target file's TOML text (for error lines), their trailing comments,
and its numbers checked finite.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from calibration.errors import CalibrationError


def block_lines(text: str, header: str) -> list[int]:
    """The line of every ``[[header]]`` in ``text``, in order."""
    pattern = re.compile(r"^[ \t]*\[\[\s*" + re.escape(header) + r"\s*\]\]", re.M)
    return [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]


def key_line(text: str, key: str, start: int = 0, end: int | None = None) -> int | None:
    """The first line setting ``key`` after line ``start``, up to line ``end`` (1-based, as block_lines gives)."""
    lines = text.splitlines()
    pattern = re.compile(r'^\s*(?:"' + re.escape(key) + r'"|' + re.escape(key) + r")\s*=")
    for number in range(start, len(lines) if end is None else min(end, len(lines))):
        if pattern.match(lines[number]):
            return number + 1
    return None


def key_comments(text: str, keys) -> dict[str, str]:
    """The trailing comment of each key's line, for the keys that have a line."""
    found = {}
    for key in keys:
        line = key_line(text, key)
        if line:
            _, _, comment = text.splitlines()[line - 1].partition("#")
            found[key] = comment.strip()
    return found


def finite_number(table: dict, key: str, path: Path, line: int | None, name: str, default=None) -> float | None:
    """``table[key]`` (or ``default``) as a float; CalibrationError if it is not a finite number."""
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalibrationError(f"'{key}' must be a finite number, got {value!r}", file=path, line=line,
                               variable=name)
    return float(value)
