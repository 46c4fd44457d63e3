"""What models/policy_loop.mdl claims, checked through its behaviour.

Each threshold follows from the model's structure (signs of links, first-order flows,
conservation), not from a copy of its output.
"""

from __future__ import annotations

import numpy as np
import pytest

NO_POLICY = {"Instrument Issuance Multiplier": 0, "Policy Fund Multiplier": 0}
INSTRUMENTS = ["Supply Side Instruments", "Demand Side Instruments", "Environmental Instruments"]
POLICY_FUNDED = ["Innovation Capital", "Innovation Platforms"]
FRACTIONS = ["High Tech Share", "Policy Precision", "Policy Coordination", "Performance Gap",
             "Policy Alignment", "Innovation Efficiency", "Policy Mix Coupling"]


def stocks(model) -> list[str]:
    doc = model.doc
    return list(doc.loc[doc["Type"] == "Stateful", "Real Name"])


@pytest.fixture(scope="module")
def baseline(policy_loop):
    return policy_loop.run()


def test_without_policy_the_policy_driven_stocks_only_decay(policy_loop):
    run = policy_loop.run(NO_POLICY)
    for name in INSTRUMENTS + POLICY_FUNDED:
        assert (np.diff(run[name].to_numpy()) <= 0).all(), f"{name} grew without policy"
    assert (run["Cumulative Policy Funds"] == 0).all()
    assert (run["Government R and D Funding"] == 0).all()


def test_policy_matters_for_capability(policy_loop, baseline):
    without = policy_loop.run(NO_POLICY)
    assert without["Technological Capability"].iloc[-1] < baseline["Technological Capability"].iloc[-1]


@pytest.mark.parametrize("multiplier", [0, 1, 100])
def test_stocks_never_negative_and_fractions_stay_in_unit_interval(policy_loop, multiplier):
    params = {"Instrument Issuance Multiplier": multiplier, "Policy Fund Multiplier": multiplier}
    run = policy_loop.run(params)
    for name in stocks(policy_loop):
        assert (run[name] >= 0).all(), f"{name} went negative at multiplier {multiplier}"
    for name in FRACTIONS:
        # 1e-12: the cube root in the coupling degree rounds just above 1 when the mix is balanced
        assert ((run[name] >= 0) & (run[name] <= 1 + 1e-12)).all(), f"{name} left [0, 1] at {multiplier}"
    assert (run["High Tech Share"] < policy_loop.defaults["Maximum High Tech Share"]).all()


def test_doubling_policy_funds_raises_capability_in_2035(policy_loop, baseline):
    doubled = policy_loop.run({"Policy Fund Multiplier": 2})
    assert doubled.loc[2035, "Technological Capability"] > baseline.loc[2035, "Technological Capability"]
    assert doubled.loc[2035, "Cumulative Policy Funds"] > baseline.loc[2035, "Cumulative Policy Funds"]


def test_balancing_response_loop_narrows_the_gap_after_a_shock(policy_loop):
    shock = {"Capability Shock Fraction": 0.33, "Capability Shock Year": 2015,
             "Security Goal Boost": 0, "Goal Growth Rate": 0.08}
    with_response = policy_loop.run(shock)
    without_response = policy_loop.run({**shock, "Gap Sensitivity": 0})
    gap = with_response["Performance Gap"]
    # the shock opens a gap; the response loop raises effort ...
    peak_time = gap.loc[2015:2022].idxmax()
    assert gap[peak_time] > gap.loc[2014]
    assert with_response.loc[peak_time, "Policy Effort"] > without_response.loc[peak_time, "Policy Effort"]
    # ... and closes the gap sooner than the same system without the response
    def closing_time(gap_series):
        after = gap_series.loc[peak_time:]
        return after[after <= 0.01 * gap[peak_time]].index[0]

    assert closing_time(gap) < closing_time(without_response["Performance Gap"])
    window = slice(2015, closing_time(without_response["Performance Gap"]))
    assert gap.loc[window].sum() < without_response.loc[window, "Performance Gap"].sum()


def test_learning_loop_raises_capability_through_efficiency(policy_loop):
    # coordination learning off in both runs, so precision acts only through innovation efficiency
    learning = policy_loop.run({"Coordination Learning Weight": 0})
    no_learning = policy_loop.run({"Coordination Learning Weight": 0, "Precision Learning Rate": 0})
    assert no_learning["Policy Precision"].iloc[-1] < learning["Policy Precision"].iloc[-1]
    assert no_learning["Innovation Efficiency"].iloc[-1] < learning["Innovation Efficiency"].iloc[-1]
    assert no_learning["Technological Capability"].iloc[-1] < learning["Technological Capability"].iloc[-1]


def test_talent_attraction_by_upgraded_industry(policy_loop, baseline):
    no_attraction = policy_loop.run({"Talent Attraction Elasticity": 0})
    assert no_attraction.loc[2035, "Talent"] < baseline.loc[2035, "Talent"]


def test_institutional_integration_acts_from_april_2022_only(policy_loop, baseline):
    integrated = policy_loop.run({"Institutional Integration Switch": 1})
    before = slice(2006, 2022)
    np.testing.assert_array_equal(integrated.loc[before, "Policy Coordination"].to_numpy(),
                                  baseline.loc[before, "Policy Coordination"].to_numpy())
    assert integrated.loc[2025, "Policy Coordination"] > baseline.loc[2025, "Policy Coordination"]


def test_phase_two_guidance_fund_boom(policy_loop, baseline):
    no_phases = policy_loop.run({"Policy Phases Switch": 0})
    np.testing.assert_array_equal(no_phases.loc[2006:2012.75, "Innovation Capital"].to_numpy(),
                                  baseline.loc[2006:2012.75, "Innovation Capital"].to_numpy())
    assert baseline.loc[2019, "Innovation Capital"] > no_phases.loc[2019, "Innovation Capital"]
    assert list(baseline.loc[[2010, 2015, 2025], "Policy Phase"]) == [1, 2, 3]


def test_instrument_and_fund_stocks_conserve_their_flows(policy_loop):
    step = policy_loop.control["TIME STEP"]
    run = policy_loop.run(saveper=step)
    for stock, inflow, outflow in [
        ("Supply Side Instruments", "Supply Side Issuance", "Supply Side Lapse"),
        ("Innovation Capital", "Capital Investment", "Capital Exit"),
    ]:
        net = (run[inflow] - run[outflow]).to_numpy()[:-1] * step
        np.testing.assert_allclose(run[stock].iloc[-1] - run[stock].iloc[0], net.sum(), rtol=1e-9)
    spent = run["Policy Funds"].to_numpy()[:-1].sum() * step
    assert run["Cumulative Policy Funds"].iloc[-1] == pytest.approx(spent, rel=1e-9)


def test_instruments_start_in_steady_state(policy_loop):
    """With effort held at 1 the initial portfolio is the steady state of issuance and lapse."""
    run = policy_loop.run({"Gap Sensitivity": 0}, final_time=2008)
    for name in INSTRUMENTS:
        np.testing.assert_allclose(run[name].to_numpy(), run[name].iloc[0], rtol=1e-12)
