"""The indicator loader: sourced values only, memory_unverified never used, 2022 at most."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.data import load_series
from calibration.errors import CalibrationError

ROOT = Path(__file__).resolve().parents[1]
HEADER = "year,value,unit,source,note,memory_unverified\n"


def write(tmp_path, body, name="series.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_reads_sourced_values_and_skips_documented_gaps(tmp_path):
    path = write(tmp_path, "2010,1.5,t,Official release,,\n"
                           "2011,,t,,not verified,\"memory, unverified: 99\"\n"
                           "2012,2.5,t,Official release,DERIVED: a - b,\"memory, unverified: 7\"\n")
    s = load_series(path)
    assert s.years == (2010, 2012)
    assert s.values == (1.5, 2.5)  # the memory values (99, 7) are never read
    assert s.lines == (2, 4)


def test_refuses_a_value_without_source(tmp_path):
    path = write(tmp_path, "2010,1.5,t,Official release,,\n2011,1.7,t,,,\n")
    with pytest.raises(CalibrationError) as err:
        load_series(path)
    assert str(err.value).startswith(f"{path}:3: source: ")
    assert "no source" in str(err.value)


def test_memory_value_is_not_a_substitute_for_a_value(tmp_path):
    # value empty, memory filled, no note: a missing value, not a memory fallback
    path = write(tmp_path, "2010,1.5,t,Official release,,\n2011,,t,Release,,\"memory, unverified: 3\"\n")
    with pytest.raises(CalibrationError, match=r":3: value: missing value for 2011"):
        load_series(path)


def test_refuses_non_numeric_and_non_finite(tmp_path):
    with pytest.raises(CalibrationError, match=r":2: value: value 'abc' for 2010 is not a number"):
        load_series(write(tmp_path, "2010,abc,t,Release,,\n"))
    with pytest.raises(CalibrationError, match="not finite"):
        load_series(write(tmp_path, "2010,inf,t,Release,,\n"))


def test_refuses_years_after_2022(tmp_path):
    with pytest.raises(CalibrationError, match="after 2022"):
        load_series(write(tmp_path, "2022,1,t,Release,,\n2023,2,t,Release,,\n"))


def test_refuses_missing_columns_and_missing_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("year,value\n2010,1\n", encoding="utf-8")
    with pytest.raises(CalibrationError, match="missing column"):
        load_series(path)
    with pytest.raises(CalibrationError, match="no such indicator file"):
        load_series(tmp_path / "absent.csv")


def test_committed_copies_match_the_shared_data_and_load():
    data = ROOT / "calibration" / "data"
    files = sorted(data.glob("*.csv"))
    assert files
    shared = ROOT.parent / "shared" / "data" / "indicators"
    for path in files:
        if shared.exists():
            assert path.read_bytes() == (shared / path.name).read_bytes(), path.name
        if path.name != "policy_events.csv":
            series = load_series(path, mixed_units=True)  # the BNEF and Big Fund files mix units (targets say why)
            assert max(series.years) <= 2022


def test_mixed_units_are_refused_unless_accepted(tmp_path):
    path = write(tmp_path, "2021,1,a,Release,,\n2022,2,b,Release,,\n")
    with pytest.raises(CalibrationError, match="mixed units"):
        load_series(path)
    assert load_series(path, mixed_units=True).values == (1.0, 2.0)


def test_derived_series_repeat_the_numbers_of_the_shared_notes():
    """Each derived row's value appears in the note of the shared file its source names."""
    import csv

    derived = ROOT / "calibration" / "data" / "derived"
    shared = ROOT.parent / "shared" / "data" / "indicators"
    files = sorted(derived.glob("*.csv"))
    assert files
    for path in files:
        series = load_series(path)
        for year, value, source in zip(series.years, series.values, series.sources):
            origin = re.search(r"note of (\S+\.csv) (\d{4})", source)
            assert origin, (path.name, year)
            copy = ROOT / "calibration" / "data" / origin.group(1)
            with (shared / origin.group(1) if shared.exists() else copy).open(encoding="utf-8") as handle:
                notes = {row["year"]: row["note"] for row in csv.DictReader(handle)}
            assert f"{value:g}" in notes[origin.group(2)], (path.name, year, value)
