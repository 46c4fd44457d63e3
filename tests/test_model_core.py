"""Loading and running models: cache, lookups, overrides, isolation between runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import FIXTURES, MODELS
from sdloop.errors import OverrideError, SimulationError
from sdloop.engines.pysd_model import Model, load_model
from sdloop.engines.pysd_runtime import quiet_pysd

LOOKUP_MODEL = FIXTURES / "core" / "goal_lookup.mdl"


def test_translation_goes_to_the_cache_not_next_to_the_model(tmp_path):
    copy = tmp_path / "goal_lookup.mdl"
    shutil.copy(LOOKUP_MODEL, copy)
    Model(copy).run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["goal_lookup.mdl"]


def test_fast_lookups_give_the_numbers_pysd_gives(tmp_path):
    import pysd

    model = load_model(LOOKUP_MODEL)
    assert model.lookups_accelerated == 1
    # the stock crosses every segment of the table, and the end values are held beyond it
    for capacity in (100, 30, 300):
        fast = model.run({"Capacity": capacity})
        copy = tmp_path / f"plain_{capacity}.mdl"
        shutil.copy(LOOKUP_MODEL, copy)
        with quiet_pysd():
            plain = pysd.read_vensim(str(copy)).run(params={"capacity": capacity})
        np.testing.assert_allclose(fast["Stock"].to_numpy(), plain["Stock"].to_numpy(), rtol=1e-12, atol=0)


def test_lookup_holds_end_values_outside_the_table():
    model = load_model(LOOKUP_MODEL)
    lookup = model._pysd.components.crowding_effect
    assert lookup(-1.0) == 1.0 and lookup(5.0) == 0.0
    assert lookup(0.25) == pytest.approx(0.95)


def test_runs_do_not_leak_settings_into_later_runs(policy_loop):
    first = policy_loop.run()
    policy_loop.run({"Policy Fund Multiplier": 5, "Capability Shock Fraction": 0.5}, final_time=2020)
    again = policy_loop.run()
    assert again.index[-1] == 2035
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())


def test_unknown_name_fails_before_the_run_with_close_matches(policy_loop):
    with pytest.raises(OverrideError) as err:
        policy_loop.run({"Policy Fund Multiplyer": 2})
    message = str(err.value)
    assert "Policy Fund Multiplyer" in message and "'Policy Fund Multiplier'" in message


def test_names_match_regardless_of_case_and_underscores(policy_loop):
    a = policy_loop.run({"policy_fund_multiplier": 2})
    b = policy_loop.run({"Policy Fund Multiplier": 2})
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_computed_variables_cannot_be_overridden(policy_loop):
    with pytest.raises(OverrideError, match="not a constant"):
        policy_loop.run({"Policy Funds": 10})


def test_division_by_zero_names_the_equation(tmp_path):
    text = LOOKUP_MODEL.read_text().replace("Stock / Lifetime", "Stock / (Lifetime - 10)")
    path = tmp_path / "divzero.mdl"
    path.write_text(text)
    with pytest.raises(SimulationError) as err:
        Model(path).run()
    assert str(err.value).startswith(f"{path}:18: Outflow: ")


def test_non_finite_run_names_the_variable(tmp_path):
    text = LOOKUP_MODEL.read_text().replace("Stock / Lifetime", "-Stock * EXP(Stock)")
    path = tmp_path / "blowup.mdl"
    path.write_text(text)
    with pytest.raises(SimulationError) as err:
        Model(path).run()
    assert "blowup.mdl" in str(err.value) and "non-finite" in str(err.value)


def test_columns_are_vensim_names_and_time_is_the_index(policy_loop):
    frame = policy_loop.run(columns=["Talent", "Policy Funds"])
    assert list(frame.columns) == ["Talent", "Policy Funds"]
    assert frame.index.name == "time"
    assert frame.index[0] == 2006 and frame.index[-1] == 2035


def test_project_models_load(policy_loop):
    assert "Technological Capability" in policy_loop.variables
    assert (MODELS / "policy_loop.mdl").exists()
