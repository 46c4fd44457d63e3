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
    """The shock's effect is measured against the same system without the shock, once with the
    response loop (Gap Sensitivity as written) and once without it (sensitivity 0)."""
    shock = {"Capability Shock Fraction": 0.33, "Capability Shock Year": 2015}
    # the goal anchored on the frontier alone, so the gap closes only by capability
    frozen_goal = {"Base Benchmark Weight": 1, "Security Benchmark Weight Increase": 0}
    runs = {}
    for label, extra in (("with", {}), ("without", {"Gap Sensitivity": 0})):
        plain = policy_loop.run({**frozen_goal, **extra})
        shocked = policy_loop.run({**frozen_goal, **extra, **shock})
        runs[label] = {k: shocked[k] - plain[k] for k in ("Performance Gap", "Policy Effort",
                                                            "Technological Capability")}
    gap = runs["with"]["Performance Gap"]
    # the shock opens a gap; the response loop raises effort above the unshocked path ...
    peak_time = gap.loc[2015:2022].idxmax()
    assert gap[peak_time] > 0.05
    assert runs["with"]["Policy Effort"].loc[peak_time] > 0
    np.testing.assert_allclose(runs["without"]["Policy Effort"], 0, atol=1e-12)
    # ... and the extra gap it leaves is smaller than without the response
    window = slice(2015, 2035)
    assert gap.loc[window].sum() < runs["without"]["Performance Gap"].loc[window].sum()
    assert runs["with"]["Technological Capability"].loc[2030] > runs["without"]["Technological Capability"].loc[2030]


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


def test_goal_follows_achievement_and_the_benchmark(policy_loop, baseline):
    """The goal is no exogenous exponential: it drifts down after a capability loss when it is
    anchored on achievement, and ignores the loss when it is anchored on the frontier alone."""
    shock = {"Capability Shock Fraction": 0.33, "Capability Shock Year": 2015}
    shocked = policy_loop.run(shock)
    assert shocked.loc[2020, "Capability Goal"] < baseline.loc[2020, "Capability Goal"]
    frontier_only = {"Base Benchmark Weight": 1, "Security Benchmark Weight Increase": 0}
    anchored = policy_loop.run(frontier_only)
    anchored_shocked = policy_loop.run({**frontier_only, **shock})
    np.testing.assert_allclose(anchored_shocked["Capability Goal"], anchored["Capability Goal"], rtol=1e-12)
    # a faster frontier raises a benchmark-anchored goal
    faster = policy_loop.run({**frontier_only, "Frontier Growth Rate": 0.12})
    assert faster.loc[2030, "Capability Goal"] > anchored.loc[2030, "Capability Goal"]


def test_security_phase_leans_the_goal_toward_the_benchmark(policy_loop, baseline):
    no_shift = policy_loop.run({"Security Benchmark Weight Increase": 0})
    np.testing.assert_array_equal(no_shift.loc[2006:2019.75, "Capability Goal"].to_numpy(),
                                  baseline.loc[2006:2019.75, "Capability Goal"].to_numpy())
    assert baseline.loc[2020.5, "Benchmark Weight"] > no_shift.loc[2020.5, "Benchmark Weight"]


def test_upgrading_follows_capability_relative_to_the_frontier(policy_loop, baseline):
    faster_frontier = policy_loop.run({"Frontier Growth Rate": 0.12})
    assert faster_frontier.loc[2030, "High Tech Share"] < baseline.loc[2030, "High Tech Share"]
    assert (baseline["High Tech Share"] < policy_loop.defaults["Maximum High Tech Share"]).all()


def test_exports_follow_world_trade_and_relative_capability_not_output(policy_loop):
    flat = {"Export Capability Elasticity": 0}
    run = policy_loop.run(flat)
    t = run.index.to_numpy() - 2006
    expected = (policy_loop.defaults["Initial High Tech Exports"]
                * np.exp(policy_loop.defaults["World High Tech Trade Growth"] * t))
    np.testing.assert_allclose(run["High Tech Exports"], expected, rtol=1e-9)
    # with the capability link, more policy money (more capability) wins a larger share
    base = policy_loop.run({"Export Capability Elasticity": 1})
    doubled = policy_loop.run({"Export Capability Elasticity": 1, "Policy Fund Multiplier": 2})
    assert doubled.loc[2030, "High Tech Exports"] > base.loc[2030, "High Tech Exports"]
