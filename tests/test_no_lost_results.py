"""No result is ever lost or mixed (issue #10 files and folders, #16 item 6): a run either lands
whole or leaves everything as it was, `results/latest` that is not sdloop's link is refused
before any work, folders left by dead processes are cleaned up, and `--out` is replaced whole."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

from sdloop.cli.main import main

MODEL = """{UTF-8}
S = INTEG(S * g, 1)
\t~\tDmnl
\t~\tAssumed: exponential growth.
\t|

g = 0.1
\t~\t1/Year
\t~\tAssumed, range 0.05-0.2.
\t|

INITIAL TIME = 0 ~ Year ~ Start. |
FINAL TIME = 5 ~ Year ~ End. |
TIME STEP = 0.5 ~ Year ~ Step. |
SAVEPER = TIME STEP ~ Year ~ Save. |
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "m.mdl").write_text(MODEL)
    (tmp_path / "u.toml").write_text('[parameters.g]\ndistribution = "uniform"\nlow = 0.05\nhigh = 0.2\n'
                                     'source = "assumed (test)"\n')
    path = tmp_path / "p.project.toml"
    path.write_text('name = "p"\nmodel = "m.mdl"\n[metrics.final]\nexpr = \'at("S", 5)\'\nbetter = "higher"\n'
                    '[ensemble]\nuncertainty = "u.toml"\nsamples = 4\nseed = 1\n')
    return path


def run(tmp_path: Path, results: Path) -> int:
    return main(["run", str(project(tmp_path)), "--results", str(results), "--no-ensemble", "--no-cache"])


def test_results_latest_that_is_a_real_folder_is_refused_before_any_work(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "latest").mkdir(parents=True)
    (results / "latest" / "mine.txt").write_text("keep")
    assert run(tmp_path, results) == 2
    err = capsys.readouterr().err
    assert f"{results / 'latest'} is a real folder, not the link sdloop keeps" in err
    assert sorted(p.name for p in results.iterdir()) == ["latest"]
    assert (results / "latest" / "mine.txt").read_text() == "keep"


def test_a_full_disk_leaves_the_earlier_run_and_nothing_half_written(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results"
    assert run(tmp_path, results) == 0
    first = os.readlink(results / "latest")
    before = sorted(p.name for p in results.iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(results / "x.csv"))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    assert run(tmp_path, results) == 1
    err = capsys.readouterr().err
    assert "no space left on the device; the partial output was removed and earlier results are untouched" in err
    assert sorted(p.name for p in results.iterdir()) == before  # no .incomplete-* left
    assert os.readlink(results / "latest") == first


def test_folders_left_by_dead_processes_are_removed(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    dead = results / ".incomplete-999999999-abc"  # no such process
    live = results / f".incomplete-{os.getpid()}-abc"  # this one: still working
    dead.mkdir()
    live.mkdir()
    assert run(tmp_path, results) == 0
    assert not dead.exists() and live.exists()


def test_ensemble_out_is_replaced_whole(tmp_path, capsys):
    out = tmp_path / "e"
    args = ["ensemble", str(project(tmp_path)), "--out", str(out), "--no-figures", "--sobol", "0"]
    assert main(args) == 0
    (out / "stale_sobol.csv").write_text("from an earlier, different run")
    earlier = (out / "robustness.csv").read_text()
    assert main(args + ["--seed", "2"]) == 0
    assert not (out / "stale_sobol.csv").exists()
    assert (out / "robustness.csv").exists() and (out / "manifest.json").exists()
    assert (out / "robustness.csv").read_text() != earlier
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ensemble_out_holding_other_files_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    assert main(["ensemble", str(project(tmp_path)), "--out", str(out), "--no-figures"]) == 2
    assert "already holds files sdloop did not write there" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_failed_ensemble_leaves_out_as_it_was(tmp_path, capsys):
    out = tmp_path / "e"
    args = ["ensemble", str(project(tmp_path)), "--out", str(out), "--no-figures", "--sobol", "0"]
    assert main(args) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(args + ["--parameters", "nope"]) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
