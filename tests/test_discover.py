"""Per-draw ensemble results (samples.parquet, written in chunks) and scenario discovery (PRIM and a
decision tree) with coverage and density."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from sdloop.experiments.discovery import Outcome, prim_box, read_meta, read_samples, strategy_loses, tree_box
from test_cli import sdloop

SECTOR = MODELS / "sector.project.toml"


def known_box(n=400, seed=0, noise=0.03):
    """y: a > 0.6 and b < 0.5 (flipped on a few draws), inputs a..e uniform on [0, 1]."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(size=(n, 5)), columns=list("abcde"))
    y = ((X.a > 0.6) & (X.b < 0.5)).to_numpy() ^ (rng.uniform(size=n) < noise)
    return Outcome(X, y, "known box")


def inside(outcome, box) -> np.ndarray:
    keep = np.ones(len(outcome.y), dtype=bool)
    for row in box.limits.itertuples():
        keep &= (outcome.inputs[row.parameter] >= row.low).to_numpy() & (outcome.inputs[row.parameter] <= row.high)
    return keep


@pytest.mark.parametrize("find", [prim_box, tree_box])
def test_discovery_finds_a_known_box_and_reports_its_coverage_and_density(find):
    outcome = known_box()
    box = find(outcome)
    limits = box.limits.set_index("parameter")
    assert {"a", "b"} <= set(limits.index) and len(limits) <= 3  # the two inputs that matter, few others
    # the box of largest coverage at density >= 0.8 may be a little looser than the true one
    assert 0.5 <= limits.loc["a", "low"] <= 0.65 and limits.loc["a", "high"] == pytest.approx(outcome.inputs.a.max())
    assert 0.45 <= limits.loc["b", "high"] <= 0.65 and limits.loc["b", "low"] == pytest.approx(outcome.inputs.b.min())
    keep = inside(outcome, box)
    assert box.coverage == pytest.approx(outcome.y[keep].sum() / outcome.y.sum())
    assert box.density == pytest.approx(outcome.y[keep].mean())
    assert box.mass == pytest.approx(keep.mean())
    assert box.density > 0.8 and box.coverage > 0.6


def test_discovery_on_noise_finds_no_dense_box():
    rng = np.random.default_rng(3)
    outcome = Outcome(pd.DataFrame(rng.uniform(size=(300, 4)), columns=list("wxyz")), rng.uniform(size=300) < 0.2,
                      "noise")
    box = prim_box(outcome)
    assert box.density < 0.8  # nothing to find: PRIM keeps (about) the whole space


@pytest.fixture(scope="module")
def ensemble_dirs(tmp_path_factory):
    """The same small ensemble with per-draw results, in one chunk and in three chunks on two workers."""
    tmp = tmp_path_factory.mktemp("discover")
    common = ("--cases", "nev", "--scenarios", "baseline", "-n", "48", "--sobol", "0",
              "--no-figures", "--save-samples")
    one = sdloop("ensemble", SECTOR, *common, "--out", tmp / "one")
    assert one.returncode == 0, one.stderr
    chunked = sdloop("ensemble", SECTOR, *common, "--chunk", "20", "--workers", "2", "--out", tmp / "chunked")
    assert chunked.returncode == 0, chunked.stderr
    return tmp


def test_per_draw_results_hold_every_run_and_agree_with_the_ensemble_tables(ensemble_dirs):
    samples = pd.read_parquet(ensemble_dirs / "one" / "samples.parquet")
    meta = read_meta(ensemble_dirs / "one" / "samples.parquet")
    strategies = samples["strategy"].nunique()
    assert strategies > 2 and len(samples) == 48 * strategies and sorted(samples["draw"].unique()) == list(range(48))
    assert meta["inputs"] and set(meta["inputs"]) <= set(samples.columns)
    robustness = pd.read_csv(ensemble_dirs / "one" / "robustness.csv")
    for row in robustness.itertuples():
        values = samples.loc[samples["strategy"] == row.strategy, row.metric]
        finite = values[np.isfinite(values)]
        if len(finite):
            assert finite.mean() == pytest.approx(row.mean, rel=1e-5), (row.strategy, row.metric)  # CSV: 6 digits
    claims = pd.read_parquet(ensemble_dirs / "one" / "claims_draws.parquet")
    shares = pd.read_csv(ensemble_dirs / "one" / "claims.csv").dropna(subset=["share_of_draws"])
    for row in shares.itertuples():
        assert claims[row.claim].mean() == pytest.approx(row.share_of_draws)


def test_per_draw_results_do_not_depend_on_chunks_or_workers(ensemble_dirs):
    for name, keys in (("samples.parquet", ["case", "scenario", "strategy", "draw"]),
                       ("claims_draws.parquet", ["draw"])):
        one = pd.read_parquet(ensemble_dirs / "one" / name).sort_values(keys, ignore_index=True)
        chunked = pd.read_parquet(ensemble_dirs / "chunked" / name)
        assert chunked["draw"].iloc[0] == 0 and chunked["draw"].iloc[-1] == 47  # chunks in draw order
        pd.testing.assert_frame_equal(one, chunked.sort_values(keys, ignore_index=True))
        assert not list((ensemble_dirs / "chunked").glob(f".{name}*"))  # no temporary file left


def mixed_outcome(path):
    """A (strategy, metric) pair on which the strategy is best on some draws and not on others."""
    meta = read_meta(path)
    for metric, better in meta["metrics"].items():
        if not better:
            continue
        rows = read_samples(path, meta, metric=metric)
        for strategy in rows["strategy"].unique():
            outcome = strategy_loses(rows, meta, case="nev", scenario="baseline", strategy=strategy, metric=metric)
            if 0.15 <= outcome.y.mean() <= 0.85:
                return strategy, metric, outcome
    pytest.skip("no strategy is best on some draws and not on others here")


@pytest.mark.parametrize("method", ["prim", "tree"])
def test_discover_explains_where_a_strategy_is_not_best(ensemble_dirs, method):
    strategy, metric, outcome = mixed_outcome(ensemble_dirs / "one" / "samples.parquet")
    out = ensemble_dirs / f"found_{method}"
    result = sdloop("discover", ensemble_dirs / "one", "--strategy", strategy, "--metric", metric,
                    "--method", method, "--threshold", "0.5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "coverage" in result.stdout and "density" in result.stdout
    box = pd.read_csv(out / "box.csv")
    keep = np.ones(len(outcome.y), dtype=bool)
    for row in box.itertuples():
        keep &= (outcome.inputs[row.parameter] >= row.low).to_numpy() & (outcome.inputs[row.parameter] <= row.high)
    text = (out / "discover.md").read_text()
    assert f"coverage {outcome.y[keep].sum() / outcome.y.sum():.1%}" in text
    assert f"density {outcome.y[keep].mean():.1%}" in text
    assert (out / "discover.png").exists() and (out / "box.tex").exists()


def test_discover_fails_in_one_line_on_an_unknown_metric_or_missing_samples(ensemble_dirs, tmp_path):
    bad = sdloop("discover", ensemble_dirs / "one", "--strategy", "lifecycle_phased", "--metric", "nope")
    assert bad.returncode == 2 and "no metric 'nope'" in bad.stderr and "self_sufficiency_2035" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    close = sdloop("discover", ensemble_dirs / "one", "--strategy", "lifecycle_phased", "--metric", "peak_shortfal")
    assert close.returncode == 2 and "did you mean 'peak_shortfall'" in close.stderr
    missing = sdloop("discover", tmp_path, "--claim", "x")
    assert missing.returncode == 2 and "--save-samples" in missing.stderr and "Traceback" not in missing.stderr
