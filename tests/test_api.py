"""The Python API as a notebook uses it: names offered by completion, a model that says what it is,
one run as a DataFrame, N runs as a Dataset, a run directory read back, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import FIXTURES

import sdloop
from sdloop.errors import SdloopError

LOGISTIC = FIXTURES / "logistic_growth.mdl"


def test_completion_offers_the_api_names():
    assert {"load", "run_project", "load_run", "Model", "RunDirectory"} <= set(dir(sdloop))


def test_a_model_runs_once_as_a_frame_and_n_times_as_a_dataset():
    model = sdloop.load(LOGISTIC)
    assert "logistic_growth.mdl" in repr(model) and model.engine in repr(model)
    frame = model.run({"growth fraction": 0.4}, final_time=10)
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "time" and frame.index[-1] == 10
    runs = model.run({"growth fraction": [0.3, 0.5, 0.7]})
    assert dict(runs.sizes)["run"] == 3 and list(runs["growth fraction"].values) == [0.3, 0.5, 0.7]
    assert float(runs["Population"].isel(time=-1, run=2)) > float(runs["Population"].isel(time=-1, run=0))
    with pytest.raises(SdloopError, match="did you mean 'growth fraction'"):
        model.run({"growth fractoin": 0.4})


def test_a_run_directory_reads_back_as_tidy_frames(tmp_path):
    (tmp_path / "m.mdl").write_text(LOGISTIC.read_text())
    (tmp_path / "p.project.toml").write_text('model = "m.mdl"\n[scenarios.slow]\n[scenarios.fast.parameters]\n'
                                             '"growth fraction" = 0.8\n[metrics.final]\nexpr = "at(Population)"\n')
    run_dir = sdloop.run_project(tmp_path / "p.project.toml", results=tmp_path / "results", ensemble=False)
    results = sdloop.load_run(run_dir)
    assert list(results.metrics()["scenario"]) == ["slow", "fast"]
    tidy = results.trajectories(variables=["Population"])
    assert list(tidy.columns) == ["scenario", "time", "variable", "value"] and set(tidy.variable) == {"Population"}
    with pytest.raises(SdloopError, match="did you mean 'Population'"):  # not an empty frame
        results.trajectories(variables=["Populaton"])


def test_a_run_that_failed_part_way_leaves_the_pysd_model_as_it_was():
    """In a session (a notebook, a test process) the same PySD model object serves every run: one
    that failed part-way (non-real at 2010) must not change the numbers of the next (it did: 82
    variables of the sector model differed, up to 0.6, until the model was loaded again)."""
    import numpy as np

    from conftest import MODELS
    from sdloop.engines.pysd_model import load_model

    model = load_model(MODELS / "sector_lifecycle.mdl")
    case = {"Initial Capability": 0.2, "Research Productivity": 0.05}
    before = model.run(case)
    with pytest.raises(SdloopError, match="became non-real"):
        model.run({"Initial Cumulative Production": -5})
    after = model.run(case)
    assert np.array_equal(after.to_numpy(float), before.to_numpy(float), equal_nan=True)
