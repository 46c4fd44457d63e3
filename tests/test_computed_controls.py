"""A constant that INITIAL TIME, FINAL TIME, TIME STEP or SAVEPER is computed from, when set for a
run, moves the time grid in the numpy and compiled engines as it does in PySD."""

from __future__ import annotations

import numpy as np
import pytest

from sdloop.engines.numpy_engine import Engine, compare_frames
from sdloop.errors import OverrideError

MODEL = """\
growth = 0.05 ~ 1/Year ~ Assumed (test model). |
start year = 2000 ~ Year ~ Assumed (test model). |
horizon = 10 ~ Year ~ Assumed (test model). |
step size = 0.25 ~ Year ~ Assumed (test model). |
save every = 2 ~ Dmnl ~ Assumed (test model): steps between saved times. |
stock = INTEG(inflow, 1) ~ Widget ~ |
inflow = growth * stock ~ Widget/Year ~ |
INITIAL TIME = start year ~ Year ~ |
FINAL TIME = start year + horizon ~ Year ~ |
TIME STEP = step size ~ Year ~ |
SAVEPER = TIME STEP * save every ~ Year ~ |
"""

CASES = [{}, {"horizon": 4}, {"start year": 1990, "horizon": 3}, {"step size": 0.125},
         {"save every": 4, "growth": 0.1}]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("controls") / "computed_controls.mdl"
    path.write_text(MODEL)
    return path


def _engines(path):
    engines = [Engine(path)]
    from sdloop.engines.cbuild import CompilerUnavailable

    try:
        from sdloop.engines.compiled import CompiledEngine

        engines.append(CompiledEngine(path))
    except CompilerUnavailable:
        pass
    return engines


@pytest.mark.parametrize("params", CASES, ids=lambda p: ",".join(p) or "defaults")
def test_grid_follows_the_constants_it_is_computed_from(model, params):
    from sdloop.engines.pysd_model import load_model

    reference = load_model(model).run(params)
    span = params.get("horizon", 10)
    assert reference.index[-1] - reference.index[0] == pytest.approx(span)  # PySD honours it
    for engine in _engines(model):
        ours = engine.run_frame(params)
        assert len(ours.index) == len(reference.index), engine.kind
        np.testing.assert_allclose(ours.index, reference.index)
        assert compare_frames(ours, reference) <= 1e-9, engine.kind


def test_explicit_final_time_still_wins_and_varying_grid_is_refused(model):
    for engine in _engines(model):
        frame = engine.run_frame({"horizon": 4}, final_time=2002)
        assert frame.index[-1] == pytest.approx(2002)
        assert engine.timing == {"start year", "horizon", "step size", "save every"}
        with pytest.raises(OverrideError, match="time grid"):
            engine.run({"horizon": np.array([3.0, 4.0])})
        ok = engine.run({"growth": np.array([0.01, 0.02]), "horizon": 3})  # one grid for all runs
        assert ok.times[-1] == pytest.approx(2003) and ok["stock"].shape[1] == 2
