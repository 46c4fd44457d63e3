"""The model structure: variables, written-out SMOOTH/DELAY stocks, Euler runs equal to PySD's."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from analysis_helpers import FIXTURES, run, structure
from sdloop.errors import ModelFileError


def test_goal_seeking_structure():
    s = structure("goal_seeking.mdl")
    level = s["Level"]
    assert level.kind == "stock" and level.inflows == ("adjustment",) and level.outflows == ()
    assert level.units == "Widget" and level.line == 2 and "seeks the goal" in level.comment
    assert s["adjustment"].kind == "flow"
    assert s["gap"].kind == "auxiliary"
    assert {v.name for v in s.constants} == {"goal", "adjustment time"}
    gap = s["gap"]
    assert gap.equation == s["goal"].symbol - level.symbol
    assert s.order.index("gap") < s.order.index("adjustment")
    assert s.control("time step") == 0.125 and s.control("saveper") == 0.125
    assert s.time_units == "Year"


def test_names_follow_vensim_spelling_rules():
    s = structure("goal_seeking.mdl")
    assert s.get("Adjustment_Time") is s["adjustment time"]
    assert s.get("no such thing") is None


def test_smooth_delay_trend_written_out_as_stocks():
    s = structure("builtins.mdl")
    smooth_stages = [v for v in s.stocks if v.owner == "smoothed births"]
    assert len(smooth_stages) == 3
    assert len([v for v in s.stocks if v.owner == "delayed births"]) == 1
    assert len([v for v in s.stocks if v.owner == "birth trend"]) == 1
    assert s["fixed delay births"].kind == "delay_fixed"
    assert s["initial births"].kind == "initial"
    assert all(v.line == s["smoothed births"].line for v in smooth_stages)
    assert s.unsupported == () and s.algebraic_loops == ()


def test_piecewise_functions_have_piecewise_derivatives():
    s = structure("builtins.mdl")
    signals = s["signals"].equation
    assert signals.has(sympy.Piecewise)
    d = sympy.diff(signals, s["births"].symbol)
    assert d.has(sympy.Piecewise)


def test_lookup_knows_its_slope_sign():
    s = structure("builtins.mdl")
    lookup = s["effect of crowding"].lookup
    assert lookup.slope_sign() == "-"
    x = sympy.Symbol("x")
    assert sympy.diff(lookup(x), x).is_nonpositive


def test_euler_run_matches_pysd(tmp_path, monkeypatch):
    """Every variable of the builtins fixture (SMOOTH3, DELAY1, DELAY FIXED, TREND, INITIAL,
    IF THEN ELSE, MIN, MAX, STEP, RAMP, PULSE, a lookup) equals PySD's trajectory."""
    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path))
    from sdloop.engines.pysd_model import Model

    frame = Model(FIXTURES / "builtins.mdl").run()
    ours = run("builtins.mdl")
    rows = np.searchsorted(ours.times, frame.index.to_numpy() - 1e-9)
    for column in frame.columns:
        if column in ours.values:
            np.testing.assert_allclose(ours[column][rows], frame[column].to_numpy(), rtol=1e-9, atol=1e-9,
                                       err_msg=column)


def test_unsupported_construct_is_reported_with_line(tmp_path):
    from sdloop.structure.build import build_structure

    text = (FIXTURES / "goal_seeking.mdl").read_text().replace(
        "goal = 100", "goal = 100 + RANDOM UNIFORM(0, 1, 0)")
    model = tmp_path / "random.mdl"
    model.write_text(text)
    s = build_structure(model)
    assert [(u.variable, u.line, u.construct) for u in s.unsupported] == [("goal", 17, "RANDOM UNIFORM")]
    with pytest.raises(ModelFileError, match=r"random.mdl:17: goal: RANDOM UNIFORM is not supported"):
        s.require_simulable()


def test_xmile_and_vensim_give_the_same_structure():
    mdl, xmile = structure("sir.mdl"), structure("sir.xmile")
    own = lambda s: {v.name.lower() for v in s.variables.values() if v.kind != "control"}  # noqa: E731
    assert own(mdl) == own(xmile)
    assert xmile["Infected"].inflows == ("infection",) and xmile["Infected"].outflows == ("recovery",)
    np.testing.assert_allclose(run("sir.xmile")["Infected"], run("sir.mdl")["Infected"], rtol=1e-12)


def test_structure_is_frozen():
    s = structure("goal_seeking.mdl")
    with pytest.raises(Exception):
        s.variables["goal"] = None
    with pytest.raises(Exception):
        s["goal"].units = "x"


def test_nothing_written_next_to_fixtures():
    assert not list(FIXTURES.glob("*.py"))
