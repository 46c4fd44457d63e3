"""The edit-run loop: after a one-constant edit, `sdloop run` reuses what the edit cannot change
(the compiled kernel, whose C does not depend on constant values; figures whose data are the
same) and its tables reflect the edit."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from conftest import MODELS, ROOT

RUN = ("--scenarios", "baseline,doubled_funds", "--no-ensemble", "--workers", "1")


def _edit(path, name, old, new):
    text = path.read_text()
    pattern = rf"(?m)^{re.escape(name)} = {re.escape(old)}$"
    assert len(re.findall(pattern, text)) == 1
    path.write_text(re.sub(pattern, f"{name} = {new}", text))


def _run(project, results, capsys):
    from sdloop.cli import main

    assert main(["run", str(project), "--results", str(results), *RUN]) == 0
    out = capsys.readouterr().out
    summary = pd.read_csv(results / "latest" / "policy_loop" / "summary.csv", index_col=0)
    return out, summary


def _kernels():
    from sdloop.engines.pysd_translation import cache_dir

    return sorted(p.name for p in cache_dir().glob("kernel-*"))


@pytest.mark.slow
def test_one_constant_edit_reruns_only_what_it_changes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path / "cache"))  # nothing cached by other tests
    models = tmp_path / "models"
    models.mkdir()
    for name in ("policy_loop.mdl", "policy_loop.project.toml", "policy_loop_scenarios.toml",
                 "policy_loop.loops.toml"):
        shutil.copy(MODELS / name, models / name)
    shutil.copytree(ROOT / "calibration" / "fitted", tmp_path / "calibration" / "fitted")
    project, model = models / "policy_loop.project.toml", models / "policy_loop.mdl"

    first, before = _run(project, tmp_path / "r", capsys)
    assert "compiled C engine" in first or "numpy engine" in first
    kernels = _kernels()

    # a constant the fitted values override in every run: new model text, the same numbers
    _edit(model, "Patent Yield", "707", "800")
    second, same = _run(project, tmp_path / "r", capsys)
    assert "reused 0 of 2 runs" in second  # the model changed: its runs are made again ...
    # ... but the figures drawn from them have the same data; the loop-dominance figure, keyed
    # on the model text (its analysis reads the model file), is drawn again
    assert "figures: 2 reused, 1 drawn" in second, second
    pd.testing.assert_frame_equal(same, before)

    # a constant only the baseline leaves alone: its row changes, doubled_funds' does not
    _edit(model, "Policy Fund Multiplier", "1", "1.5")
    third, after = _run(project, tmp_path / "r", capsys)
    assert "reused 0 of 2 runs" in third
    assert not after.loc["baseline"].equals(before.loc["baseline"])
    assert after.loc["baseline", "Cumulative Policy Funds"] > before.loc["baseline", "Cumulative Policy Funds"]
    pd.testing.assert_series_equal(after.loc["doubled_funds"], before.loc["doubled_funds"])
    assert _kernels() == kernels  # neither edit compiled C again
