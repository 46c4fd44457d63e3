"""Published indicator series: read, check, and refuse what may not be calibrated on.

Each CSV has the columns ``year,value,unit,source,note,memory_unverified`` (see
``calibration/data/`` and ``../shared/data/indicators/README.md``). The rules:

- a row with a value must name its ``source``; a value without one is refused;
- ``memory_unverified`` is never read (it holds numbers nobody checked);
- a row without a value is a documented gap only if its ``note`` says why (for example
  "not verified"); an empty value with an empty note is a missing value and refused;
- a value must be a finite number;
- years after 2022 are refused: the series stop at 2022 on purpose;
- one unit per file, unless the caller accepts documented mixed units (``mixed_units``: the
  BNEF pack prices mix survey vintages and real-dollar bases; the target says why it is usable).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from calibration.errors import CalibrationError

LAST_YEAR = 2022
REQUIRED_COLUMNS = ("year", "value", "unit", "source", "note")


@dataclass(frozen=True)
class Series:
    """One published series: years and values with the source and file line of each value."""

    name: str
    file: str
    unit: str
    years: tuple[int, ...]
    values: tuple[float, ...]
    sources: tuple[str, ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.years)

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.years, self.values))


def load_series(path: str | Path, *, last_year: int = LAST_YEAR, mixed_units: bool = False) -> Series:
    """Read one indicator CSV; CalibrationError naming file and line for any bad row."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise CalibrationError("no such indicator file", file=path) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CalibrationError("empty indicator file", file=path) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CalibrationError(f"missing column(s) {', '.join(missing)}; expected "
                                   "year,value,unit,source,note[,memory_unverified]", file=path, line=1)
        col = {name: header.index(name) for name in REQUIRED_COLUMNS}  # memory_unverified: never read
        years, values, sources, lines, units, row_units = [], [], [], [], set(), []
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                row = row + [""] * (len(header) - len(row))
            cell = {name: row[i].strip() for name, i in col.items()}
            try:
                year = int(cell["year"])
            except ValueError:
                raise CalibrationError(f"year {cell['year']!r} is not an integer", file=path,
                                       line=number, variable="year") from None
            if year > last_year:
                raise CalibrationError(f"year {year} is after {last_year}: the series stop at "
                                       f"{last_year} on purpose", file=path, line=number, variable="year")
            if cell["value"] == "":
                if cell["note"]:
                    continue  # a documented gap (e.g. "not verified"); its memory value is ignored
                raise CalibrationError(f"missing value for {year} (and no note explaining the gap)",
                                       file=path, line=number, variable="value")
            try:
                value = float(cell["value"])
            except ValueError:
                raise CalibrationError(f"value {cell['value']!r} for {year} is not a number",
                                       file=path, line=number, variable="value") from None
            if not math.isfinite(value):
                raise CalibrationError(f"value {cell['value']!r} for {year} is not finite",
                                       file=path, line=number, variable="value")
            if not cell["source"]:
                raise CalibrationError(f"value {cell['value']} for {year} has no source; unsourced "
                                       "values are never calibrated on", file=path, line=number,
                                       variable="source")
            if year in years:
                raise CalibrationError(f"year {year} appears twice", file=path, line=number,
                                       variable="year")
            years.append(year)
            values.append(value)
            sources.append(cell["source"])
            lines.append(number)
            units.add(cell["unit"])
            row_units.append(cell["unit"])
    if not years:
        raise CalibrationError("no sourced values in the file", file=path)
    if len(units) > 1 and not mixed_units:
        raise CalibrationError(f"mixed units {sorted(units)}", file=path, variable="unit")
    order = sorted(range(len(years)), key=years.__getitem__)
    unit = row_units[order[-1]]  # the latest row's unit (the only one unless mixed_units)
    if len(units) > 1:
        unit += "; mixed units, other rows: " + " | ".join(sorted(units - {unit}))
    return Series(
        name=path.stem, file=str(path), unit=unit,
        years=tuple(years[i] for i in order), values=tuple(values[i] for i in order),
        sources=tuple(sources[i] for i in order), lines=tuple(lines[i] for i in order),
    )
