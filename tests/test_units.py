"""Units: Vensim conventions, the deliberate mismatch, clean fixtures."""

from __future__ import annotations

import pytest

from analysis_helpers import FIXTURES, structure
from sdloop.structure.units import UnitParser, check_units, format_units

CLEAN = ["goal_seeking.mdl", "exponential_growth.mdl", "logistic_growth.mdl", "sir.mdl", "sir.xmile",
         "oscillator.mdl", "builtins.mdl"]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_fixtures_have_no_units_problems(name):
    assert check_units(structure(name)) == []


def test_mismatch_caught_on_the_right_line_and_variable():
    problems = check_units(structure("units_mismatch.mdl"))
    assert [str(p) for p in problems] == [
        f"{FIXTURES / 'units_mismatch.mdl'}:7: adjustment: expected Widget/Year, found Widget*Year"]


@pytest.mark.parametrize("a, b", [
    ("Year", "Years"), ("years", "Year"), ("Dmnl", "1"), ("1/Year", "Year^-1"),
    ("Person/Year/Year", "Person/(Year*Year)"), ("Meter/(Second*Second)", "Meter/Second^2"),
    ("Days", "day"), ("billion yuan/(yuan/USD)", "billion USD"),
])
def test_equivalent_unit_spellings(a, b):
    parser = UnitParser()
    assert parser.parse(a) == parser.parse(b)


def test_units_are_printed_in_vensim_style():
    assert format_units("Person / Years") == "Person/Year"
    assert format_units("dmnl") == "Dmnl"
    assert format_units("1/Year") == "1/Year"


def test_stock_and_flow_units_must_agree(tmp_path):
    from sdloop.structure.build import build_structure

    text = (FIXTURES / "goal_seeking.mdl").read_text()
    text = text.replace("Widget/Year\n\t~\tCloses", "Widget\n\t~\tCloses").replace(
        "adjustment = gap / adjustment time", "adjustment = gap")
    model = tmp_path / "flow.mdl"
    model.write_text(text)
    (problem,) = check_units(build_structure(model))
    assert problem.line == 2 and problem.variable == "Level"
    assert problem.message == "expected Widget/Year, found Widget (inflow 'adjustment')"
