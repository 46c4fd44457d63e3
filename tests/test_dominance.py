"""Loops That Matter on reference models."""

from __future__ import annotations

import numpy as np

from analysis_helpers import loops, run, structure
from sdloop.analysis.dominance import loop_dominance


def dominance(name, **kwargs):
    return loop_dominance(structure(name), run(name), loops(name), **kwargs)


def test_logistic_switches_from_r_to_b_when_the_stock_passes_half_capacity():
    d = dominance("logistic_growth.mdl")
    ids = {loop.polarity: loop.id for loop in loops("logistic_growth.mdl")}
    dominant = d.dominant()
    population = run("logistic_growth.mdl")["Population"]
    times = run("logistic_growth.mdl").times
    half = times[np.argmax(population > 500)]
    switch = dominant.index[np.argmax(dominant.to_numpy() == ids["B"])]
    dt = times[1] - times[0]
    assert abs(switch - half) <= dt + 1e-12
    assert set(dominant[dominant.index < half - dt]) == {ids["R"]}
    assert set(dominant[dominant.index > half + dt]) == {ids["B"]}


def test_logistic_scores_match_the_analytic_form():
    """With net growth = g*P*(1-P/K): R score (1-P/K)/|1-2P/K|, B score -(P/K)/|1-2P/K|."""
    d = dominance("logistic_growth.mdl")
    ids = {loop.polarity: loop.id for loop in loops("logistic_growth.mdl")}
    p = run("logistic_growth.mdl")["Population"][:-1] / 1000
    early = p < 0.3
    np.testing.assert_allclose(d.loop_scores[ids["R"]].to_numpy()[early],
                               ((1 - p) / np.abs(1 - 2 * p))[early], rtol=0.02)
    np.testing.assert_allclose(d.loop_scores[ids["B"]].to_numpy()[early],
                               (-p / np.abs(1 - 2 * p))[early], rtol=0.02)


def test_single_loop_models_have_relative_score_one():
    for name, sign in (("goal_seeking.mdl", -1), ("exponential_growth.mdl", 1)):
        rel = dominance(name).relative_scores.iloc[:, 0].to_numpy()
        assert np.allclose(rel[np.abs(rel) > 0], sign)


def test_sir_infection_then_depletion_then_recovery():
    d = dominance("sir.mdl")
    by_name = {loop.id: loop.name for loop in loops("sir.mdl")}
    order = [by_name[p.loop] for p in d.periods() if p.loop]
    assert order == ["Contagion", "Depletion", "Recovery"]


def test_relative_scores_sum_to_one_in_absolute_value():
    d = dominance("sir.mdl")
    total = d.relative_scores.abs().sum(axis=1).to_numpy()
    assert np.allclose(total[total > 0], 1.0)


def test_original_flow_scores_are_available():
    d = dominance("logistic_growth.mdl", flow_scores="2020")
    assert d.link_scores["net growth -> Population"].abs().max() == 1.0


def test_short_stretches_can_be_merged():
    d = dominance("sir.mdl")
    every = d.periods()
    merged = d.periods(min_length=100.0)
    assert len(merged) == 1 < len(every)
    assert merged[0].start == every[0].start and merged[0].end == every[-1].end
