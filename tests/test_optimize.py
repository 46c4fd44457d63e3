"""Schedule optimisation: the search stays in bounds and under budget, the frontier is not
dominated, named strategies are measured as the study measures them, results are reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from sdloop.errors import OverrideError
from sdloop.experiments.optimize import load_optimize_spec, optimize, pareto
from sdloop.experiments.project import load_project
from sdloop.experiments.study import Study
from test_cli import sdloop

SMALL = """project = "{project}"
case = "ic"
scenario = "baseline"
base = "no_policy"
objectives = ["self_sufficiency_2035"]
cost = "cumulative_fiscal_cost"
budgets = [400]
population = 8
generations = 2
seed = 3
strategies = ["no_policy", "industrial_then_trade", "lifecycle_phased"]
[variables]
"Research Start Year" = [2006, 2030]
"Scale Duration" = [0, 20]
"Scale Start Year" = [2006, 2030]
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("opt") / "small.optimize.toml"
    path.write_text(SMALL.format(project=MODELS / "sector.project.toml"))
    spec = load_optimize_spec(path)
    study = Study(load_project(spec.project).select(cases="ic", scenarios="baseline"))
    return spec, study, optimize(spec, study)


def test_pareto_keeps_exactly_the_points_nothing_beats():
    points = pd.DataFrame({"x": [0, 1, 1, 2, 3, 3], "y": [5, 3, 4, 3, 1, 2]})
    assert list(pareto(points, "x", "y")) == [True, True, False, False, True, False]


def test_candidates_stay_in_bounds_and_the_optimum_in_budget(small):
    spec, _, result = small
    for name, (low, high) in spec.variables.items():
        assert result.points[name].between(low, high).all(), name
    assert len(result.points) >= spec.population * spec.generations
    best = result.best.iloc[0]
    found = result.points[np.isclose(result.points["Research Start Year"], best["Research Start Year"])
                          & np.isclose(result.points["Scale Duration"], best["Scale Duration"])]
    assert (found["cumulative_fiscal_cost"] <= 400 + 1e-6).all()
    # nothing under budget is better than the optimum
    within = result.points[result.points["cumulative_fiscal_cost"] <= 400]
    assert found["self_sufficiency_2035"].max() >= within["self_sufficiency_2035"].max() - 1e-12


def test_frontier_points_are_not_dominated(small):
    _, _, result = small
    front = result.frontier
    everything = pd.concat([result.points, result.named], ignore_index=True)
    for _, row in front.iterrows():
        better = everything[(everything["cumulative_fiscal_cost"] <= row["cumulative_fiscal_cost"])
                            & (everything["self_sufficiency_2035"] >= row["self_sufficiency_2035"])
                            & ((everything["cumulative_fiscal_cost"] < row["cumulative_fiscal_cost"])
                               | (everything["self_sufficiency_2035"] > row["self_sufficiency_2035"]))]
        assert better.empty
    assert set(result.named["strategy"]) == {"no_policy", "industrial_then_trade", "lifecycle_phased"}
    assert bool(result.named.set_index("strategy").loc["no_policy", "on_frontier_self_sufficiency_2035"])


def test_named_strategies_are_measured_as_the_study_measures_them(small):
    _, study, result = small
    metrics = study.run(progress=False).metrics.set_index("strategy")
    for _, row in result.named.iterrows():
        for name in ("self_sufficiency_2035", "cumulative_fiscal_cost"):
            assert row[name] == pytest.approx(metrics.loc[row["strategy"], name], rel=1e-9, abs=1e-12)


def test_same_seed_same_search(small):
    spec, study, result = small
    again = optimize(spec, study)
    pd.testing.assert_frame_equal(result.points, again.points)


def test_bad_files_fail_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.optimize.toml"
    bad.write_text(SMALL.format(project=MODELS / "sector.project.toml").replace('"Scale Duration" = [0, 20]',
                                                                              '"Scale Duration" = [20, 0]'))
    with pytest.raises(OverrideError) as err:
        load_optimize_spec(bad)
    assert "bad.optimize.toml:14" in str(err.value) and "low < high" in str(err.value)
    bad.write_text('speed = 3\n' + SMALL.format(project=MODELS / "sector.project.toml"))
    result = sdloop("optimize", bad, "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.optimize.toml:1: speed: unknown key" in result.stderr
    assert not (tmp_path / "out").exists()


def test_optimize_command_writes_the_frontier(tmp_path):
    spec = tmp_path / "small.optimize.toml"
    spec.write_text(SMALL.format(project=MODELS / "sector.project.toml"))
    result = sdloop("optimize", spec, "--results", tmp_path / "results", "--generations", "1", "--no-figures")
    assert result.returncode == 0, result.stderr
    latest = tmp_path / "results" / "latest"
    for name in ("frontier.csv", "candidates.csv", "named.csv", "optima.csv", "manifest.json"):
        assert (latest / name).exists(), name
    assert "on the frontier" in result.stdout


@pytest.fixture(scope="module")
def robust(tmp_path_factory):
    """The small search on 6 draws of the project's uncertainty, by quantile and by regret."""
    found = {}
    for criterion in ("quantile", "regret"):
        path = tmp_path_factory.mktemp("robust") / "r.optimize.toml"
        path.write_text(SMALL.format(project=MODELS / "sector.project.toml").replace("generations = 2",
                                                                                     "generations = 1")
                        + f'[robust]\ndraws = 6\nquantile = 1.0\ncriterion = "{criterion}"\n')
        spec = load_optimize_spec(path)
        study = Study(load_project(spec.project).select(cases="ic", scenarios="baseline"))
        found[criterion] = (spec, study, optimize(spec, study))
    return found


def test_minimax_regret_is_measured_against_the_best_named_strategy_on_each_draw(robust):
    """Regret of a named strategy = max over draws of (best named value - its value) for a
    higher-is-better metric: recomputed here from the per-draw values, it matches; the best of
    them is never behind on every draw, so the smallest regret of the named is >= 0 and one named
    strategy has regret 0 only if it is best on every draw."""
    from sdloop.experiments.optimize import ScheduleEvaluator
    from sdloop.experiments.overrides import merge

    spec, study, result = robust["regret"]
    evaluator = ScheduleEvaluator(spec, study)
    per_draw = {}
    for name in spec.strategies:
        layers = study.project.layers(("ic", "baseline", name))
        per_draw[name] = evaluator._raw({}, 1, (merge(evaluator.sim, layers[:-2]),
                                                merge(evaluator.sim, layers[-2:])))["self_sufficiency_2035"][0]
    best = np.max(np.stack(list(per_draw.values())), axis=0)  # higher is better
    named = result.named.set_index("strategy")
    for name, values in per_draw.items():
        assert named.loc[name, "self_sufficiency_2035"] == pytest.approx(np.max(best - values), abs=1e-12)
    assert (named["self_sufficiency_2035"] >= -1e-12).all()
    # the cost is still the worst case (quantile 1) over the draws, as in the quantile search
    q_named = robust["quantile"][2].named.set_index("strategy")
    assert named["cumulative_fiscal_cost"].to_numpy() == pytest.approx(q_named["cumulative_fiscal_cost"].to_numpy())
    # and the quantile search's objective is the worst draw's value
    for name, values in per_draw.items():
        assert q_named.loc[name, "self_sufficiency_2035"] == pytest.approx(values.min(), abs=1e-12)


def test_an_unknown_robust_criterion_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "bad.optimize.toml"
    bad.write_text(SMALL.format(project=MODELS / "sector.project.toml") + '[robust]\ndraws = 4\ncriterion = "best"\n')
    with pytest.raises(OverrideError) as err:
        load_optimize_spec(bad)
    assert "bad.optimize.toml:18" in str(err.value) and "quantile, regret" in str(err.value)
