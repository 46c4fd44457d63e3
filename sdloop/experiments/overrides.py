"""Cases, strategies and scenarios: named mappings of constant overrides, read from TOML.

A case file holds one mapping::

    description = "New energy vehicles"
    [parameters]
    "Home Market Size" = 25   # million vehicles/Year; source ...

A collection file (``strategies.toml``, ``scenarios.toml``) holds one table per entry::

    [no_policy]
    description = "..."
    [no_policy.parameters]
    "R and D Subsidy Intensity" = 0

An entry may also say ``inherits = "other"`` (it starts from that entry's parameters, per-case
tables and label, and overrides them), ``table = "..."`` (a free label that groups entries in
reports, e.g. "sequencing" or "dose"), and hold per-case parameters under
``[name.cases.CASE]``, applied only when the case named CASE runs (``Overrides.for_case``).
A case file may hold a ``[milestone]`` table (kept as data in ``Overrides.extra``).
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from sdloop.errors import OverrideError, SdloopError

if TYPE_CHECKING:
    from sdloop.engines.pysd_model import Model


@dataclass(frozen=True)
class Overrides:
    """A named set of constant values, remembering the file and line of each."""

    name: str
    parameters: Mapping[str, float]
    description: str = ""
    source: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)
    table: str = ""
    cases: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    extra: Mapping[str, object] = field(default_factory=dict)

    def for_case(self, case: str) -> "Overrides":
        """These overrides with the per-case table of ``case`` (if any) laid over them."""
        own = self.cases.get(case)
        if not own:
            return self
        return Overrides(self.name, {**self.parameters, **own}, self.description, self.source, self.lines,
                         self.table)

    def checked(self, model: "Model") -> dict[str, float]:
        """The parameters under the model's own spelling; OverrideError for unknown names."""
        return {
            model.resolve(name, constants_only=True, source=self.source, line=self.lines.get(name)): value
            for name, value in self.parameters.items()
        }


def read_toml(path: str | Path, error: type[SdloopError] = OverrideError,
              missing: str = "no such file") -> tuple[dict, str]:
    """A TOML file's data and text; ``error`` naming the file (and line) if it is missing or malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(missing, file=path) from None
    except IsADirectoryError:
        raise error("is a folder, not a TOML file", file=path) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", file=path,
                    line=raw.count(b"\n", 0, exc.start) + 1) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise error(f"malformed TOML: {message}", file=path,
                    line=int(found.group(1)) if found else None) from None
    _require_finite(data, (), path, text, error)
    return data, text


def _require_finite(value: object, keys: tuple, path: Path, text: str, error: type[SdloopError]) -> None:
    """Every number in a TOML file is finite and fits a float: ``nan``, ``inf`` and 1e400 are refused."""
    if isinstance(value, dict):
        for key, item in value.items():
            _require_finite(item, keys + (key,), path, text, error)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _require_finite(item, keys + (index,), path, text, error)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        bad = (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, int) and abs(value) > sys.float_info.max)
        if bad:
            from sdloop.experiments.toml_lines import TomlLines

            message = f"{value!r} is not a finite number" if isinstance(value, float) else \
                f"a whole number of {len(str(abs(value)))} digits is too large for a number"
            name = next((str(k) for k in reversed(keys) if isinstance(k, str)), None)
            raise error(message, file=path,
                        line=TomlLines(text).line(*keys) if keys else None,
                        variable=name)


def _key_line(text: str, key: str, after: int = 0) -> int | None:
    pattern = re.compile(r'^\s*(?:"' + re.escape(key) + r'"|' + re.escape(key) + r")\s*=", re.M)
    for match in pattern.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if line > after:
            return line
    return None


def _table_line(text: str, header: str) -> int:
    match = re.search(r"^\s*\[\s*" + re.escape(header) + r"\s*\]", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else 0


def _numbers(path: Path, text: str, params: object, header: str) -> tuple[dict[str, float], dict[str, int]]:
    if not isinstance(params, dict):
        raise OverrideError(f"'{header}' must be a table of name = number", file=path,
                            line=_table_line(text, header) or None)
    after = _table_line(text, header)
    values: dict[str, float] = {}
    lines: dict[str, int] = {}
    for key, value in params.items():
        line = _key_line(text, key, after) or _key_line(text, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OverrideError(f"value {value!r} is not a number", file=path, line=line, variable=key)
        values[key] = float(value)
        if line:
            lines[key] = line
    return values, lines


ENTRY_KEYS = {"description", "parameters", "inherits", "table", "cases"}
CASE_KEYS = {"description", "parameters", "milestone"}


def _parameters(path: Path, text: str, table: object, name: str, header: str,
                allowed: set[str] = ENTRY_KEYS) -> Overrides:
    if not isinstance(table, dict):
        raise OverrideError(f"'{header}' must be a table of name = number", file=path,
                            line=_table_line(text, header) or None)
    params = table.get("parameters", {})
    if not isinstance(params, dict):
        raise OverrideError("'parameters' must be a table of name = number", file=path,
                            line=_key_line(text, "parameters"))
    values, lines = _numbers(path, text, params, f"{header}.parameters" if header else "parameters")
    unknown = set(table) - allowed
    if unknown:
        key = sorted(unknown)[0]
        import difflib

        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        if close and isinstance(table[key], dict) and header:  # [a.parameter] for [a.parameters]
            from sdloop.experiments.toml_lines import TomlLines

            raise OverrideError(f"[{header}.{key}]: unknown table '{key}'; did you mean [{header}.{close[0]}]?",
                                file=path, line=TomlLines(text).line(header, key), variable=f"{header}.{key}")
        if isinstance(table[key], dict) and header:
            from sdloop.experiments.toml_lines import TomlLines

            raise OverrideError(
                f"[{header}.{key}] nests a table '{key}' in '{header}': a dot in a table name is not part of the "
                "name (names are letters, digits, '_' and '-')",
                file=path, line=TomlLines(text).line(header, key), variable=f"{header}.{key}")
        raise OverrideError(
            f"unknown key{f'; did you mean {close[0]!r}?' if close else ''} (expected {', '.join(sorted(allowed))})",
            file=path, line=_key_line(text, key, _table_line(text, header)) or _table_line(text, key) or None,
            variable=key,
        )
    cases = table.get("cases", {})
    if not isinstance(cases, dict):
        raise OverrideError("'cases' must hold one table of name = number per case", file=path,
                            line=_key_line(text, "cases") or None, variable=name)
    per_case = {case: _numbers(path, text, numbers, f"{header}.cases.{case}")[0] for case, numbers in cases.items()}
    extra = {key: table[key] for key in allowed - ENTRY_KEYS - {"description", "parameters"} if key in table}
    return Overrides(name, values, str(table.get("description", "")), str(path), lines,
                     str(table.get("table", "")), per_case, extra)


def load_case(path: str | Path) -> Overrides:
    """Read one case file (``description`` and a ``[parameters]`` table)."""
    path = Path(path)
    data, text = read_toml(path)
    return _parameters(path, text, data, path.stem, "", CASE_KEYS)


def load_collection(path: str | Path) -> dict[str, Overrides]:
    """Read a file of named entries (strategies or scenarios), in file order."""
    path = Path(path)
    data, text = read_toml(path)
    if not data:
        raise OverrideError("no entries (expected one [NAME] table per entry, with a description and "
                            "[NAME.parameters])", file=path)
    entries = {name: _parameters(path, text, table, name, name) for name, table in data.items()}
    return {name: _inherited(path, text, data, entries, name, ()) for name in entries}


def _inherited(path: Path, text: str, data: dict, entries: dict[str, Overrides], name: str,
               seen: tuple[str, ...]) -> Overrides:
    """An entry with what it inherits laid under it (parents first, any depth)."""
    entry = entries[name]
    parent = data[name].get("inherits")
    if parent is None:
        return entry
    line = _key_line(text, "inherits", _table_line(text, name)) or None
    if not isinstance(parent, str) or parent not in entries:
        raise OverrideError(f"inherits unknown entry {parent!r}; known: {', '.join(entries)}", file=path,
                            line=line, variable=name)
    if parent in seen or parent == name:
        raise OverrideError(f"inheritance cycle: {' -> '.join((*seen, name, parent))}", file=path, line=line,
                            variable=name)
    base = _inherited(path, text, data, entries, parent, (*seen, name))
    cases = {case: {**base.cases.get(case, {}), **entry.cases.get(case, {})}
             for case in {*base.cases, *entry.cases}}
    return Overrides(name, {**base.parameters, **entry.parameters}, entry.description, entry.source,
                     {**base.lines, **entry.lines}, entry.table or base.table, cases, entry.extra)


def parse_set(assignments: Iterable[str]) -> Overrides:
    """Overrides from command-line ``NAME=VALUE`` strings."""
    values: dict[str, float] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise OverrideError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            value = float(raw)
        except ValueError:
            raise OverrideError(f"value {raw.strip()!r} is not a number", file="--set",
                                variable=name.strip()) from None
        if not math.isfinite(value):
            raise OverrideError(f"value {raw.strip()!r} is not a finite number", file="--set", variable=name.strip())
        values[name.strip()] = value
    return Overrides("command line", values, source="--set")


def merge(model: "Model", layers: Iterable[Overrides]) -> dict[str, float]:
    """Check each layer against the model and merge them; later layers win."""
    merged: dict[str, float] = {}
    for layer in layers:
        merged.update(layer.checked(model))
    return merged


def select(available: Mapping[str, Overrides], wanted: str | None, kind: str) -> list[Overrides]:
    """Entries named in a comma-separated list (all when ``wanted`` is empty)."""
    if not wanted:
        return list(available.values())
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise OverrideError(
            f"unknown {kind} {', '.join(repr(n) for n in unknown)}; known: {', '.join(available)}"
        )
    return [available[n] for n in names]
