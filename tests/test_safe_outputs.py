"""Names cannot lead writes out of the run directory or onto each other, and every result is a
finite real number or the command says why (issue #16 items 2-4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, MODELS
from sdloop.cli.main import main

BLOWUP = """{UTF-8}
S = INTEG(S * S * g, 1)
\t~\tDmnl
\t~\tAssumed: grows without bound within a few years.
\t|

g = 1
\t~\t1/Year
\t~\tAssumed, range 1-2 (a blow-up test).
\t|

INITIAL TIME = 0 ~ Year ~ Start. |
FINAL TIME = 10 ~ Year ~ End. |
TIME STEP = 0.25 ~ Year ~ Step. |
SAVEPER = TIME STEP ~ Year ~ Save. |
"""


def project(tmp_path: Path, body: str, model: str = BLOWUP) -> Path:
    (tmp_path / "m.mdl").write_text(model)
    path = tmp_path / "p.project.toml"
    path.write_text('name = "p"\nmodel = "m.mdl"\n' + body)
    return path


def test_inside_refuses_paths_that_leave_the_folder(tmp_path):
    from sdloop.errors import OutputError
    from sdloop.report.output import inside

    assert inside(tmp_path, "figures/a_b") == tmp_path / "figures" / "a_b"
    for bad in ("x/../../../../elsewhere/OUTSIDE", "/etc/passwd", "../sibling"):
        with pytest.raises(OutputError, match="outside"):
            inside(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutputError, match="outside"):
        inside(tmp_path, "link/escaped")


@pytest.mark.parametrize("name", ["x/../../../../elsewhere/OUTSIDE", "nev.a", "a b", "..", "/abs"])
def test_a_scenario_name_that_is_not_a_plain_name_is_refused_at_its_line(tmp_path, capsys, name):
    path = project(tmp_path, f'[scenarios."{name}"]\ndescription = "d"\n[scenarios."{name}".parameters]\n')
    status = main(["run", str(path), "--results", str(tmp_path / "results"), "--only", "metrics"])
    err = capsys.readouterr().err
    assert status == 2 and f"{path}:" in err and "must be letters, digits, '_' and '-'" in err
    assert not (tmp_path / "results").exists() and not (tmp_path.parent / "elsewhere").exists()


def test_names_that_differ_only_in_case_are_refused(tmp_path, capsys):
    body = "".join(f'[scenarios.{n}]\ndescription = "d"\n[scenarios.{n}.parameters]\n' for n in ("Fast", "fast"))
    path = project(tmp_path, body)
    assert main(["run", str(path), "--results", str(tmp_path / "results")]) == 2
    assert "'Fast' and 'fast' differ only in case" in capsys.readouterr().err


def test_two_figures_may_not_share_a_file(tmp_path):
    from sdloop.errors import OutputError
    from sdloop.report.cache import Cache
    from sdloop.report.figures import FigureJob
    from sdloop.report.study_report import save_figures

    jobs = [FigureJob("figures/A", "plot", {}), FigureJob("figures/a", "plot", {})]
    with pytest.raises(OutputError, match="two figures would both be written"):
        save_figures(jobs, tmp_path, Cache(enabled=False), {"figures": 0, "drawn": 0})


def test_a_complex_result_on_the_pysd_path_fails_with_variable_and_time(tmp_path, capsys):
    model = tmp_path / "root.mdl"
    model.write_text("{UTF-8}\nx = -1 ~ Dmnl ~ Assumed. |\ny = x ^ 0.5 ~ Dmnl ~ Assumed: complex for x < 0. |\n"
                     "S = INTEG(y, 0) ~ Dmnl ~ Assumed. |\n"
                     "INITIAL TIME = 0 ~ Year ~ S. |\nFINAL TIME = 2 ~ Year ~ E. |\nTIME STEP = 1 ~ Year ~ T. |\n"
                     "SAVEPER = TIME STEP ~ Year ~ S. |\n")
    out = tmp_path / "out.csv"
    for engine in ("pysd", "numpy"):
        status = main(["simulate", str(model), "--engine", engine, "--out", str(out)])
        err = capsys.readouterr().err
        assert status == 1, err
        assert f"{model}:3: y: became non-" in err and "at time 0" in err and "Traceback" not in err
        assert not out.exists()


def blowup_ensemble(tmp_path: Path, low: float) -> Path:
    (tmp_path / "u.toml").write_text(f'[parameters.g]\ndistribution = "uniform"\nlow = {low}\nhigh = 2\n'
                                     'source = "assumed (test)"\n')
    return project(tmp_path, '[metrics.final]\nexpr = \'at("S", 10)\'\nbetter = "lower"\n'
                             '[ensemble]\nuncertainty = "u.toml"\nsamples = 8\nseed = 1\n')


def test_an_ensemble_whose_every_run_blew_up_fails(tmp_path, capsys):
    path = blowup_ensemble(tmp_path, 1)
    status = main(["ensemble", str(path), "--results", str(tmp_path / "results"), "--no-figures"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "every one of the 8 runs of the ensemble went non-finite" in err
    assert not (tmp_path / "results" / "latest").exists()


def test_an_ensemble_leaves_blown_up_runs_out_and_says_how_many(tmp_path, capsys):
    path = blowup_ensemble(tmp_path, 0.5)
    (tmp_path / "m.mdl").write_text(BLOWUP.replace("S * S * g", "S * S * (g - 1.5)"))  # blows up for g > ~1.6
    status = main(["ensemble", str(path), "--results", str(tmp_path / "results"), "--no-figures"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "of 8 ensemble runs went non-finite; they are left out of every ranking" in err
    import pandas as pd

    table = pd.read_csv(tmp_path / "results" / "latest" / "robustness.csv")
    failed = int(table.nonfinite_runs.iloc[0])
    assert 0 < failed < 8 and f"{failed} of 8 ensemble runs" in err
    assert table.missing.iloc[0] == pytest.approx(failed / 8)


def test_claim_shares_leave_out_draws_on_which_a_run_blew_up(tmp_path, capsys):
    """A blown-up run has no metrics; counted, it would make every claim that uses it fail. The
    share is over the draws where every run stayed finite, and samples.parquet agrees."""
    import pandas as pd

    path = project(tmp_path, '[metrics.final]\nexpr = \'at("S", 10)\'\nbetter = "lower"\n'
                             '[strategies.calm]\ndescription = "d"\n[strategies.calm.parameters]\nh = 0\n'
                             '[strategies.wild]\ndescription = "d"\n[strategies.wild.parameters]\nh = 1\n'
                             '[[claims]]\nname = "calm_lower"\ntext = "t"\n'
                             'holds = \'final(strategy="calm") <= final(strategy="wild")\'\n'
                             '[ensemble]\nuncertainty = "u.toml"\nsamples = 16\nseed = 1\n',
                   model=BLOWUP.replace("S * S * g", "0.1 + h * IF THEN ELSE(g > 1.6, S * S, 0)")
                   + "h = 0 ~ Dmnl ~ Assumed: strategy switch (test). |\n")
    (tmp_path / "u.toml").write_text('[parameters.g]\ndistribution = "uniform"\nlow = 0.5\nhigh = 2\n'
                                     'source = "assumed (test)"\n')
    out = tmp_path / "results"
    status = main(["ensemble", str(path), "--results", str(out), "--no-figures", "--save-samples"])
    err = capsys.readouterr().err
    assert status == 0, err
    failed = int(pd.read_csv(out / "latest" / "robustness.csv").drop_duplicates("strategy")["nonfinite_runs"].sum())
    assert 0 < failed < 16, err  # only "wild" blows up, on some draws
    claims = pd.read_csv(out / "latest" / "claims.csv").set_index("claim")
    assert claims.loc["calm_lower", "draws"] == 16 - failed
    assert claims.loc["calm_lower", "share_of_draws"] == 1.0  # where wild is finite it equals calm
    per_draw = pd.read_parquet(out / "latest" / "claims_draws.parquet")["calm_lower"]
    assert int(per_draw.isna().sum()) == failed and per_draw.dropna().astype(bool).all()


def test_a_results_cache_entry_changed_after_it_was_written_is_not_used(tmp_path):
    """Entries are sealed with each file's SHA-256: a changed array file, a changed figure or an
    added file makes the entry a miss (and it is removed), never a silent wrong result."""
    import numpy as np

    from sdloop.report.cache import Cache

    cache = Cache(tmp_path / "cache")
    cache.put_arrays("runs", "ab12", {"x": np.arange(3.0)}, {"note": "n"})
    arrays, meta = cache.get_arrays("runs", "ab12")
    assert arrays["x"].tolist() == [0.0, 1.0, 2.0] and meta == {"note": "n"}
    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0
    entry = tmp_path / "cache" / "runs" / "ab" / "ab12"
    np.savez(entry / "arrays.npz", x=np.arange(3.0) + 1)  # someone rewrote it
    assert cache.get_arrays("runs", "ab12") is None and not entry.exists()

    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "a.png").write_bytes(b"png")
    cache.put_files("figures", "cd34", tmp_path / "figs", [tmp_path / "figs" / "a.png"])
    assert [p.name for p in cache.get_files("figures", "cd34", tmp_path / "out")] == ["a.png"]
    entry = tmp_path / "cache" / "figures" / "cd" / "cd34"
    (entry / "extra.png").write_bytes(b"added")
    assert cache.get_files("figures", "cd34", tmp_path / "out2") is None and not (tmp_path / "out2").exists()


def test_a_complex_value_that_reaches_a_comparison_in_pysd_is_named_with_its_time(capsys):
    """A complex number can reach a comparison before PySD warns about it (TypeError '<='): the
    message still names the variable, its line and the time (the audit found 'PySD failed')."""
    status = main(["simulate", str(MODELS / "sector_lifecycle.mdl"), "--case", "nev", "--engine", "pysd",
                   "--set", "Initial Cumulative Production=-5"])
    err = capsys.readouterr().err
    assert status == 1, err
    line = [row for row in err.splitlines() if row.startswith("sdloop: error:")][0]
    assert "became non-real" in line and " at time " in line and "sector_lifecycle.mdl:" in line, line
