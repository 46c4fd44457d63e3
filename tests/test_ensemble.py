"""Ensembles: draws equal single runs, claims draw by draw, determinism, chunking, Sobol, robustness, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES, MODELS
from sdloop.engines.numpy_engine import Engine
from sdloop.errors import OverrideError
from sdloop.experiments.ensemble import run_ensemble
from sdloop.experiments.robustness import (claims_share_table, minimax_regret, percentile_bands,
                                           robustness_table)
from sdloop.experiments.uncertainty import UncertainParameter, UncertaintySpace, load_uncertainty

ENGINE_FIXTURES = FIXTURES / "engine"
SECTOR = MODELS / "sector_lifecycle.mdl"
PROJECT = MODELS / "sector.project.toml"


def study_of(cases="nev,ic", strategies="no_policy,industrial_only,lifecycle_phased",
             scenarios="baseline,export_controls"):
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    return Study(load_project(PROJECT).select(cases=cases, strategies=strategies, scenarios=scenarios))


@pytest.fixture(scope="module")
def study():
    return study_of()


@pytest.fixture(scope="module")
def design(study):
    from sdloop.report.ensemble_report import design_for

    return design_for(study)


@pytest.fixture(scope="module")
def space(study):
    return load_uncertainty(MODELS / "uncertainty.toml").checked(study.sim.resolve)


def _assert_same(a, b, exact_sums=True):
    assert a.keys == b.keys and a.strategies == b.strategies
    for key in a.keys:
        pa, pb = a.parts[key], b.parts[key]
        for name in ("n", "nonfinite", "best", "regret_n", "metric_n", "band_hist"):
            np.testing.assert_array_equal(pa[name], pb[name])
        np.testing.assert_array_equal(pa["regret_max"], pb["regret_max"])
        for metric in pa["metric_hist"]:
            np.testing.assert_array_equal(pa["metric_hist"][metric], pb["metric_hist"][metric])
        for x, y in zip(a.totals(key), b.totals(key)):
            if exact_sums:
                np.testing.assert_array_equal(x, y)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_draws_give_the_metrics_and_claims_of_single_runs(study, design, space):
    """Each draw's metrics equal those of a single run with the same constants, and each claim's
    share of draws is the share of draws on which it holds when evaluated run by run."""
    from sdloop.experiments.draws import evaluate_draws

    n = 4
    unit = space.unit_sample(n, seed=5)
    found = evaluate_draws(design, space, unit)
    sim = study.sim
    held = {c.name: [] for c in study.claims}
    from sdloop.experiments.metrics import DIMS, RunView

    for i in range(n):
        views = {}
        for key in design.keys:
            base = design.cases[key[0]]
            own = {name: base.get(name, sim.defaults[name]) for name in space.names}
            drawn = {name: float(v[i]) for name, v in space.values(unit, own).items()}
            params = {**base, **drawn, **design.layer(key[0], "scenario", key[1]),
                      **design.layer(key[0], "strategy", key[2])}
            frame = sim.run_frame(params, columns=study.metrics.columns)
            views[key] = RunView.of_frame(frame, params, sim.defaults)

        def refs_for(key):  # under()/diff(): the same expression in the run the target names
            def refs(export):
                target = dict(zip(DIMS, key)) | dict(export.target)
                other = tuple(target[d] for d in DIMS)
                return np.asarray(export.node.run(views[other], refs_for(other)))
            return refs

        table = {key: study.metrics.evaluate(view, refs_for(key)) for key, view in views.items()}
        for key in design.keys:
            for name, values in table[key].items():
                np.testing.assert_allclose(found.metrics[key][name][i], values[0], rtol=1e-10)
        for claim in study.claims:
            try:
                held[claim.name].append(bool(claim.evaluate(table)[0][0]))
            except Exception:
                continue
    evaluated = [c for c in study.claims if not isinstance(found.claims[c.name], str)]
    assert evaluated, "some claim is about the runs of this design"
    for claim in evaluated:
        assert found.claims[claim.name][0].tolist() == held[claim.name], claim.name


def test_claims_share_of_draws(design, space):
    summary = run_ensemble(design, space, 40, seed=9, chunk_size=15, progress=False)
    table = claims_share_table(summary)
    assert list(table.columns) == ["claim", "share_of_draws", "draws", "text", "values"]
    evaluated = table.dropna(subset=["share_of_draws"])
    assert len(evaluated) and (evaluated["draws"] == 40).all()
    assert evaluated["share_of_draws"].between(0, 1).all()
    skipped = table[table["share_of_draws"].isna()]
    assert skipped["values"].str.startswith("not evaluated").all()  # claims about runs not in this design


def test_same_seed_is_bit_identical_in_process_and_on_a_process_pool(design, space):
    one = run_ensemble(design, space, 60, seed=11, chunk_size=25, progress=False)
    again = run_ensemble(design, space, 60, seed=11, chunk_size=25, progress=False)
    pool = run_ensemble(design, space, 60, seed=11, chunk_size=25, workers=2, progress=False)
    _assert_same(one, again)
    _assert_same(one, pool)
    other = run_ensemble(design, space, 60, seed=12, chunk_size=25, progress=False)
    assert not np.array_equal(one.parts[one.keys[0]]["band_hist"], other.parts[other.keys[0]]["band_hist"])


def test_chunked_and_unchunked_reductions_agree(design, space):
    whole = run_ensemble(design, space, 90, seed=3, chunk_size=90, progress=False)
    chunked = run_ensemble(design, space, 90, seed=3, chunk_size=20, progress=False)
    _assert_same(whole, chunked, exact_sums=False)
    assert whole.runs == 90 * 2 * 2 * 3


def test_robustness_tables_and_bands(design, space):
    summary = run_ensemble(design, space, 50, seed=2, chunk_size=50, progress=False)
    table = robustness_table(summary)
    assert len(table) == 2 * 2 * 3 * len(design.metrics)
    ranked = table["metric"].isin([m.name for m in design.metrics if m.better])
    assert table.loc[ranked, "p_best"].between(0, 1).all()
    assert table.loc[~ranked, "p_best"].isna().all()  # a metric without `better` (milestone_reached) ranks nothing
    grouped = table[ranked].groupby(["case", "scenario", "metric"])
    # on every sample where some strategy has a value, some strategy is best; samples where every
    # strategy's value is missing (no breakthrough, capability that did not rise) have no best
    best, valued = grouped["p_best"].sum(), 1 - grouped["missing"].min()
    assert (best >= valued - 1e-12).all()
    assert (table["max_regret"].dropna() >= table["mean_regret"].dropna() - 1e-12).all()
    minimax = minimax_regret(table)
    for _, row in minimax.iterrows():
        group = table[(table.case == row.case) & (table.scenario == row.scenario) & (table.metric == row.metric)]
        assert row.max_regret == group["max_regret"].min()
    bands = percentile_bands(summary, "nev", "baseline", "Technological Capability")
    for frame in bands.values():
        values = frame.to_numpy()
        assert (np.diff(values, axis=1) >= -1e-12).all()  # p5 <= p25 <= ... <= p95
        assert frame.index[0] == 2006 and frame.index[-1] == 2035


def test_sobol_indices_of_ishigami_match_the_analytic_values():
    from sdloop.experiments.sensitivity import sobol_indices

    engine = Engine(ENGINE_FIXTURES / "ishigami.mdl")
    space = load_uncertainty(ENGINE_FIXTURES / "ishigami_uncertainty.toml")
    found = sobol_indices(engine, space, lambda result, params: {"Y": result["Y"][-1]}, n=4096, seed=7,
                          columns=["Y"]).set_index("parameter")
    np.testing.assert_allclose(found["S1"], [0.3139, 0.4424, 0.0], atol=0.04)
    np.testing.assert_allclose(found["ST"], [0.5576, 0.4424, 0.2437], atol=0.04)


def test_unknown_uncertain_parameter_fails_before_any_run(design):
    bad = UncertaintySpace((UncertainParameter("Spilover Rate", "uniform", 0.5, 1.5, relative=True),), "x.toml")
    with pytest.raises(OverrideError, match="did you mean 'Spillover Rate'"):
        run_ensemble(design, bad, 10, seed=1, progress=False)


def test_uncertainty_file_errors(tmp_path):
    path = tmp_path / "u.toml"
    path.write_text('[parameters."Spillover Rate"]\ndistribution = "gamma"\nlow = 1\nhigh = 2\n')
    with pytest.raises(OverrideError, match="unknown distribution"):
        load_uncertainty(path)
    path.write_text('[parameters."Spillover Rate"]\nlow = 2\nhigh = 1\n')
    with pytest.raises(OverrideError, match="low < high"):
        load_uncertainty(path)


def test_samples_follow_their_distributions(space):
    engine = Engine(SECTOR)
    checked = space.checked(engine.resolve)
    own = {n: engine.defaults[n] for n in checked.names}
    values = checked.sample(2000, own, seed=4)
    for p in checked.parameters:
        lo, hi = (p.low * own[p.name], p.high * own[p.name]) if p.relative else (p.low, p.high)
        assert values[p.name].min() >= lo - 1e-12 and values[p.name].max() <= hi + 1e-12
    again = checked.sample(2000, own, seed=4)
    assert all(np.array_equal(values[n], again[n]) for n in values)


def test_ensemble_command_writes_tables_and_manifest(tmp_path):
    import json

    from sdloop.cli import main

    status = main(["ensemble", str(PROJECT), "--cases", "nev", "--strategies", "no_policy,simultaneous",
                   "--scenarios", "baseline", "-n", "40", "--seed", "3", "--out", str(tmp_path / "e"),
                   "--no-figures", "--parameters", "Spillover Rate,Price Sensitivity", "--sobol", "0"])
    assert status == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "e" / "robustness.csv")
    assert set(table.strategy) == {"no_policy", "simultaneous"} and (table.samples == 40).all()
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["seeds"] == {"ensemble": 3}
    assert (tmp_path / "e" / "claims.csv").exists() and not (tmp_path / "e" / "figures").exists()


def test_simulate_numpy_engine_equals_pysd(tmp_path, capsys):
    import pandas as pd

    from sdloop.cli import main

    model = FIXTURES / "builtins.mdl"
    assert main(["simulate", str(model), "--engine", "numpy", "--out", str(tmp_path / "n.csv")]) == 0
    assert main(["simulate", str(model), "--out", str(tmp_path / "p.csv")]) == 0
    ours, theirs = pd.read_csv(tmp_path / "n.csv", index_col=0), pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert set(ours.columns) == set(theirs.columns)
    np.testing.assert_allclose(ours[theirs.columns].to_numpy(), theirs.to_numpy(), rtol=1e-9)
    assert main(["simulate", str(model), "--engine", "numpy", "--show-code"]) == 0
    assert "def run_block" in capsys.readouterr().out


def test_simulate_numpy_falls_back_to_pysd_naming_the_construct(tmp_path, capsys):
    model = tmp_path / "lookup_call.mdl"
    model.write_text((FIXTURES / "exponential_growth.mdl").read_text().replace(
        "births = Population * birth fraction", "births = Population * birth fraction * (1 + 0 * RANDOM UNIFORM(0, 1, 1))"))
    from sdloop.structure.build import build_structure

    if not build_structure(model).unsupported:
        pytest.skip("no construct the structure cannot represent in this PySD version")
    from sdloop.cli import main

    assert main(["simulate", str(model), "--engine", "numpy", "--out", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "cannot compile" in err and "falling back to the PySD engine" in err
