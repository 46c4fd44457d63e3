"""Exports for papers: trajectories and ensemble bands as netCDF with units and descriptions,
tables as LaTeX, and the run directory's index.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from sdloop.report.exports import bands_dataset, trajectories_dataset, write_index, write_netcdf

SECTOR = MODELS / "sector.project.toml"


@pytest.fixture(scope="module")
def sector_run():
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(SECTOR).select(cases="nev", scenarios="baseline",
                                               strategies="no_policy,lifecycle_phased"))
    return study, study.run(progress=False)


def test_trajectories_netcdf_holds_every_run_with_the_models_units_and_comments(tmp_path, sector_run):
    import xarray as xr

    study, result = sector_run
    keep = study.dynamic_variables()
    path = write_netcdf(trajectories_dataset(study, result.runs, keep), tmp_path / "t.nc")
    with xr.open_dataset(path) as data:
        dims = tuple(d for d in ("case", "scenario", "strategy") if d in study.project.dims) + ("time",)
        assert set(data.data_vars) == {name.replace("/", "_") for name in keep if name in result.runs[
            next(iter(result.runs))].columns}
        assert data["time"].attrs["units"] == study.sim.time_units
        structure = study.sim.structure
        described = 0
        for name in list(data.data_vars)[:40]:
            variable = data[name]
            assert variable.dims == dims
            original = variable.attrs["vensim_name"]
            assert variable.attrs["units"] == (structure.variables[original].units or "")
            described += bool(variable.attrs["description"])
            for key, frame in result.runs.items():
                at = {d: (key[i] or "baseline") for i, d in enumerate(("case", "scenario", "strategy"))
                      if d in variable.dims}
                np.testing.assert_array_equal(variable.sel(at).to_numpy(), frame[original].to_numpy(dtype=float))
        assert described >= 30  # the model comments its variables; the export keeps them


def test_bands_netcdf_is_the_bands_table_by_percentile():
    rows = []
    for strategy in ("a", "b"):
        for t in (0.0, 1.0, 2.0):
            rows.append({"case": "c", "scenario": "s", "strategy": strategy, "variable": "Stock", "time": t,
                         "p5": t, "p25": t + 1, "p50": t + 2, "p75": t + 3, "p95": t + 4})
    data = bands_dataset(pd.DataFrame(rows))
    assert list(data["percentile"].values) == [5.0, 25.0, 50.0, 75.0, 95.0]
    assert float(data["Stock"].sel(case="c", scenario="s", strategy="b", percentile=75.0, time=2.0)) == 5.0


def test_index_says_what_each_file_shows(tmp_path):
    (tmp_path / "figures").mkdir()
    for name in ("metrics.csv", "metrics.tex", "manifest.json", "figures/nev_ranking.pdf", "figures/nev_ranking.png",
                 "figures/x_fan.pdf", "figures/x_fan.png", "inputs/models/m.mdl", "odd.bin"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    text = write_index(tmp_path, {"figures/nev_ranking": "NEV: strategies ranked"}).read_text()
    lines = text.splitlines()
    assert "- `figures/nev_ranking.pdf`, `.png`: figure: NEV: strategies ranked" in lines
    assert any(line.startswith("- `figures/x_fan.pdf`, `.png`: figure: fan chart") for line in lines)
    assert "- `metrics.tex`: the table metrics.csv as LaTeX (booktabs)" in lines
    assert sum(line.startswith("- `inputs/`") for line in lines) == 1
    assert "- `odd.bin`" in lines  # listed even when nothing is known about it


def test_an_untitled_figure_is_described_by_what_its_panels_plot():
    from sdloop.report.figures import FigureJob, describe

    def panel(title, *columns):
        return {"title": title, "series": pd.DataFrame({c: [0.0] for c in columns})}

    titled = FigureJob("a", "plot", {"title": "Output  by\nstrategy", "panels": [panel("x", "a")]})
    assert describe(titled) == "Output by strategy"
    named = FigureJob("b", "plot", {"title": None, "panels": [panel(None, "Output", "Cost"), panel("Price")]})
    assert describe(named) == "2 panels: Output, Cost; Price"
    many = FigureJob("c", "plot", {"title": None, "panels": [panel(f"v{i}") for i in range(6)]})
    assert describe(many) == "6 panels: v0; v1; v2; v3; and 2 more"
    ranking = FigureJob("d", "ranking", {"title": None, "labels": {"m": "Market share", "c": "Cost"}})
    assert describe(ranking) == "strategies ranked on Market share, Cost"
    assert describe(FigureJob("e", "plot", {"title": None, "panels": []})) == ""
