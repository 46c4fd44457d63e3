"""Where each key of a TOML file stands, so errors can name FILE:LINE.

``tomllib`` returns plain data without positions. ``TomlLines(text)`` scans the text once and
maps every key path to its line: ``("metrics", "peak", "expr")`` for a key under
``[metrics.peak]``, ``("claims", 2, "holds")`` for the third ``[[claims]]`` table. Keys inside
multi-line strings and multi-line arrays are not keys and are skipped. ``line(path)`` falls back
to the closest enclosing table that was found.
"""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def _keys(dotted: str) -> list[str]:
    parts = []
    for match in _PART.finditer(dotted):
        token = match.group(0)
        if token[0] == '"':
            token = bytes(token[1:-1], "utf-8").decode("unicode_escape")
        elif token[0] == "'":
            token = token[1:-1]
        parts.append(token)
    return parts


class TomlLines:
    """Key path -> line number (1-based) for one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple, int] = {}
        self._arrays: dict[tuple, int] = {}  # resolved array path -> last index
        table: tuple = ()
        in_string: str | None = None
        depth = 0  # open brackets of a multi-line value
        for number, raw in enumerate(text.splitlines(), start=1):
            if in_string:
                if in_string in raw:
                    in_string = None
                continue
            if depth > 0:
                depth = max(0, depth + _bracket_balance(raw))
                continue
            header = _HEADER.match(raw)
            if header:
                table = self._resolve(_keys(header.group(2)), array=header.group(1) == "[[")
                self._lines.setdefault(table, number)
                continue
            assign = _ASSIGN.match(raw)
            if not assign:
                continue
            path = table + tuple(_keys(assign.group(1)))
            self._lines.setdefault(path, number)
            value = raw[assign.end():]
            for quote in ('"""', "'''"):
                if value.count(quote) % 2 == 1:
                    in_string = quote
            if not in_string:
                depth = max(0, _bracket_balance(value))

    def _resolve(self, keys: list[str], *, array: bool) -> tuple:
        path: tuple = ()
        for i, key in enumerate(keys):
            path = path + (key,)
            last = i == len(keys) - 1
            if last and array:
                index = self._arrays.get(path, -1) + 1
                self._arrays[path] = index
                path = path + (index,)
            elif path in self._arrays:
                path = path + (self._arrays[path],)
        return path

    def line(self, *path) -> int | None:
        """The line of ``path``, or of the closest enclosing key or table found."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None


def _bracket_balance(text: str) -> int:
    """Opening minus closing brackets outside strings and comments (rough, for arrays)."""
    text = re.sub(r"#.*$", "", re.sub(_QUOTED, "", text))
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")
