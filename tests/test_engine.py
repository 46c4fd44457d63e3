"""The vectorized engine: parity with PySD, names checked before any run, generated code."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES, MODELS
from sdloop.engines.numpy_engine import Engine, compare_frames, relative_difference
from sdloop.errors import OverrideError, SimulationError
from sdloop.experiments.overrides import load_collection

TOLERANCE = 1e-9
REFERENCE_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.mdl")) + ["sir.xmile", "core/goal_lookup.mdl"]


def _model(path):
    from sdloop.engines.pysd_model import load_model

    return load_model(path)


@pytest.mark.parametrize("name", REFERENCE_FIXTURES)
def test_reference_fixtures_match_pysd(name):
    path = FIXTURES / name
    assert compare_frames(Engine(path).run_frame(), _model(path).run()) <= TOLERANCE


def test_builtins_fixture_under_overrides_and_other_time_step():
    """SMOOTH3, DELAY1, DELAY FIXED, TREND, INITIAL, lookups, STEP/RAMP/PULSE, MIN/MAX."""
    path = FIXTURES / "builtins.mdl"
    params = {"birth rate": 0.3, "smoothing time": 1.5, "ramp slope": -2}
    ours = Engine(path).run_frame(params, time_step=0.125, final_time=30)
    assert compare_frames(ours, _model(path).run(params, time_step=0.125, final_time=30)) <= TOLERANCE


def test_policy_loop_scenarios_match_pysd():
    from sdloop.experiments.overrides import load_collection, merge

    model = _model(MODELS / "policy_loop.mdl")
    engine = Engine(MODELS / "policy_loop.mdl")
    entries = {name: merge(model, [entry])
               for name, entry in load_collection(MODELS / "policy_loop_scenarios.toml").items()}
    for name, params in entries.items():
        assert compare_frames(engine.run_frame(params), model.run(params)) <= TOLERANCE, name


def _sector_parity(keys=None):
    """All (or some) sector runs in one vectorized engine call, each compared with PySD."""
    from sdloop.engines.pysd_model import load_model
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    runs = Study(load_project(MODELS / "sector.project.toml", uncalibrated=True)).params
    keys = list(runs) if keys is None else [k for k in runs if keys(k)]
    engine = Engine(MODELS / "sector_lifecycle.mdl")
    names = sorted({name for k in keys for name in runs[k]})
    arrays = {name: np.array([runs[k].get(name, engine.defaults[name]) for k in keys]) for name in names}
    result = engine.run(arrays, n=len(keys))
    worst = 0.0
    for i, key in enumerate(keys):
        worst = max(worst, compare_frames(result.frame(i), load_model(MODELS / "sector_lifecycle.mdl").run(runs[key])))
    return worst, len(keys)


def test_sector_strategies_match_pysd_vectorized():
    """Every strategy under one scenario per case, integrated together in one call."""
    worst, count = _sector_parity(lambda k: (k[0], k[1]) in {("nev", "baseline"), ("ic", "export_controls")})
    assert count == 2 * len(load_collection(MODELS / "strategies.toml")) and worst <= TOLERANCE


@pytest.mark.slow
def test_every_sector_run_matches_pysd():
    """Every case x scenario x strategy."""
    worst, count = _sector_parity()
    assert count >= 64 and worst <= TOLERANCE


def test_unknown_parameter_fails_before_any_run_with_close_matches():
    engine = Engine(MODELS / "sector_lifecycle.mdl")
    with pytest.raises(OverrideError, match="did you mean 'Spillover Rate'"):
        engine.run({"Spilover Rate": np.ones(3)})
    with pytest.raises(OverrideError, match="computed by an equation"):
        engine.run({"Technological Capability": 1})
    assert engine.resolve("spillover_rate", constants_only=True) == "Spillover Rate"


def test_varying_and_uniform_constants_give_the_same_numbers():
    engine = Engine(MODELS / "sector_lifecycle.mdl")
    values = np.array([0.05, 0.1, 0.2])
    together = engine.run({"Spillover Rate": values}, columns=["Technological Capability"])
    for i, value in enumerate(values):
        alone = engine.run({"Spillover Rate": value}, columns=["Technological Capability"])
        np.testing.assert_allclose(together["Technological Capability"][:, i],
                                   alone["Technological Capability"][:, 0], rtol=1e-12)


def test_blocks_and_slices_do_not_change_results():
    engine = Engine(MODELS / "sector_lifecycle.mdl")
    params = {"Spillover Rate": np.linspace(0.05, 0.2, 50), "Price Sensitivity": np.linspace(1.5, 5, 50)}
    one = engine.run(params, columns=["Self Sufficiency"], block_size=50)
    many = engine.run(params, columns=["Self Sufficiency"], block_size=7)
    np.testing.assert_array_equal(one["Self Sufficiency"], many["Self Sufficiency"])
    pair = engine.run({k: v[13:15] for k, v in params.items()}, columns=["Self Sufficiency"])
    np.testing.assert_array_equal(pair["Self Sufficiency"], one["Self Sufficiency"][:, 13:15])


def test_non_finite_run_is_reported_with_variable():
    path = FIXTURES / "exponential_growth.mdl"
    engine = Engine(path)
    rate = "birth fraction"
    with pytest.raises(SimulationError, match="non-finite"):
        engine.run_frame({rate: 1e10})
    result = engine.run({rate: np.array([0.01, 1e10])})
    assert result.finite.tolist() == [True, False]


def test_generated_source_is_readable_python():
    engine = Engine(FIXTURES / "builtins.mdl")
    source = engine.source(varying=["birth rate"], columns=["Population"])
    assert source.startswith("def run_block(") and "for k in range(n_steps + 1):" in source
    assert "v_population = v_population + v_time_step * (v_births - v_deaths)" in source
    compile(source, "<test>", "exec")


def test_relative_difference_scales_near_zero():
    assert relative_difference(np.array([1.0, 1e-20]), np.array([1.0, 0.0])) <= 1e-8
    assert relative_difference(np.array([2.0]), np.array([1.0])) == 1.0
