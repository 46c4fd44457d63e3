"""`sdloop ensemble --uncertainty posterior`: calibrated parameters drawn jointly from the
posterior draws, the behavioural priors sampled as before."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import MODELS
from test_ensemble import PROJECT
from sdloop.errors import OverrideError
from sdloop.experiments.uncertainty import load_posterior, load_uncertainty

DRAWS = {"Home Adoption Midpoint": np.array([2020.0, 2022.0, 2024.0, 2026.0]),
         "Home Adoption Rate": np.array([0.9, 0.7, 0.5, 0.3])}  # perfectly anti-correlated


def write_posterior(directory, case="nev"):
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# test draws", "Home Adoption Midpoint,Home Adoption Rate,log_prob"]
    lines += [f"{m},{r},-1" for m, r in zip(*DRAWS.values())]
    (directory / f"{case}.posterior.csv").write_text("\n".join(lines) + "\n")


def test_samples_are_joint_draws_and_priors_still_vary(tmp_path):
    write_posterior(tmp_path)
    space = load_uncertainty(MODELS / "uncertainty.toml")
    space = replace(space, posterior=load_posterior(tmp_path, ["nev"]))
    unit = space.unit_sample(200, seed=1)
    assert unit.shape[1] == len(space.parameters) + 1
    base = {p.name: 1.0 for p in space.parameters}
    values = space.values(unit, base, case="nev")
    pairs = set(zip(values["Home Adoption Midpoint"], values["Home Adoption Rate"]))
    assert pairs == set(zip(*DRAWS.values()))  # every sample is one whole draw: the correlation is kept
    first = space.parameters[0].name
    assert len(np.unique(values[first])) > 100  # the behavioural priors vary sample by sample
    # a case without draws keeps its fitted values (no posterior column used)
    assert "Home Adoption Rate" not in space.values(unit, base, case="ic")


def test_missing_posterior_file_names_it(tmp_path):
    with pytest.raises(OverrideError, match=r"nev.posterior.csv.*sdloop calibrate nev"):
        load_posterior(tmp_path, ["nev"])


def test_ensemble_command_uses_the_posterior(tmp_path):
    """The bundled project with the committed posterior draws of calibration/fitted."""
    from sdloop.cli import main

    out = tmp_path / "e"
    status = main(["ensemble", str(PROJECT), "--cases", "nev", "--strategies", "no_policy,simultaneous",
                   "--scenarios", "baseline", "-n", "40", "--seed", "3", "--out", str(out), "--no-figures",
                   "--parameters", "Spillover Rate", "--sobol", "0", "--uncertainty", "posterior"])
    assert status == 0
    assert (out / "robustness.csv").exists()
    assert main(["ensemble", str(PROJECT), "--cases", "nev", "-n", "4", "--out", str(tmp_path / "x"),
                 "--uncertainty", "posterior", "--uncalibrated", "--sobol", "0"]) == 2
