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
    ("Unit", "Units"), ("Widgets/Month", "widget/Months"), ("Person*Persons", "persons^2"),
])
def test_equivalent_unit_spellings(a, b):
    parser = UnitParser()
    assert parser.parse(a) == parser.parse(b)


@pytest.mark.parametrize("a, b", [("Mass", "Mas"), ("s", "1"), ("Unit", "Unity")])
def test_different_units_stay_different(a, b):
    parser = UnitParser()
    assert parser.parse(a) != parser.parse(b)


def test_singular_and_plural_units_are_one_unit_in_check(tmp_path):
    """A stock in Units filled by a flow in Unit/Month, as Vensim accepts it: no unit error
    (sdloop reported 'expected Units/Month, found Unit/Month'); a real mismatch still found."""
    assert _checked(tmp_path, "Stock = INTEG(inflow, 1) ~ Units ~ Assumed. |\n"
                              "inflow = 2 ~ Unit/Month ~ Assumed. |\n"
                              "copies = Stock * 2 ~ units ~ Assumed. |\n") == []
    assert _checked(tmp_path, "Stock = INTEG(inflow, 1) ~ Units ~ Assumed. |\n"
                              "inflow = 2 ~ Unit ~ Assumed. |\n") == [
        "expected Units/Month, found Units"]  # one unit, spelt as first written


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


def _checked(tmp_path, equations: str, time_units: str = "Month"):
    from sdloop.structure.build import build_structure

    model = tmp_path / "model.mdl"
    model.write_text(equations + "".join(
        f"{name} = {value} ~ {time_units} ~ |\n"
        for name, value in (("INITIAL TIME", 0), ("FINAL TIME", 20), ("TIME STEP", 0.25), ("SAVEPER", 1))))
    return [p.message for p in check_units(build_structure(model))]


def test_trend_with_a_literal_average_time_has_the_trend_units(tmp_path):
    """TREND(x, 6, 0): the 6 is in the model's time unit, so the trend is 1/Month (it was
    found Dmnl); with a named time the same; a wrong declared unit is still found."""
    base = "demand = 100 + STEP(20, 5) ~ widget/Month ~ |\nt = 6 ~ Month ~ |\n"
    assert _checked(tmp_path, base + "trend = TREND(demand, 6, 0) ~ 1/Month ~ |\n") == []
    assert _checked(tmp_path, base + "trend = TREND(demand, t, 0.1) ~ 1/Month ~ |\n") == []
    assert _checked(tmp_path, base + "trend = TREND(demand, 6, 0) ~ widget/Month ~ |\n") == [
        "expected widget/Month, found 1/Month"]


def test_builtins_of_time_with_literal_arguments_take_the_units_they_need(tmp_path):
    """RAMP with a literal slope (also -1), SIN of a literal times Time, and a term with an
    unknown factor (a RANDOM draw) are not unit errors; a sum of widgets and Months still is."""
    ok = ("ramped = RAMP(2, 4, 12) + RAMP(-1, 15, 20) ~ widget/Month ~ |\n"
          "wave = 1 + 0.1 * SIN(6.283 * Time / 12) ~ Dmnl ~ |\n"
          "switch = 1 ~ Dmnl ~ |\n"
          "noisy = 100 + RANDOM NORMAL(-5, 5, 0, 1, 3) * switch ~ widget/Month ~ |\n")
    assert _checked(tmp_path, ok) == []
    assert _checked(tmp_path, "stock = 3 ~ widget ~ |\nbad = stock + Time ~ widget ~ |\n") == [
        "expected widget, found Month"]
