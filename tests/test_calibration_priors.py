"""Honest out-of-sample design: priors use only data before the hold-out year.

Every estimated parameter of a bundled target file names the data years behind its bounds,
start and prior (``data_years``), and none of them may be a hold-out year. The constants of
the national model (which the national targets do not estimate) may not cite a fitted
indicator file together with a hold-out year either: a prior derived from the data it is
later tested on makes the hold-out meaningless.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.targets import load_targets, prior_years_problems
from sdloop.structure.build import build_structure

ROOT = Path(__file__).resolve().parents[1]
TARGETS = sorted((ROOT / "calibration" / "targets").glob("*.toml"))


@pytest.mark.parametrize("path", TARGETS, ids=lambda p: p.stem)
def test_every_prior_names_its_data_years_and_none_is_held_out(path):
    targets = load_targets(path)
    assert prior_years_problems(targets) == []
    assert all(p.basis for p in targets.parameters), "every estimated parameter says where its prior comes from"


def test_the_check_catches_a_prior_that_uses_a_holdout_year(tmp_path):
    text = (ROOT / "calibration" / "targets" / "national.toml").read_text()
    text = text.replace('model = "../../models/policy_loop.mdl"', f'model = "{ROOT / "models" / "policy_loop.mdl"}"')
    text = text.replace('holdout_from = 2020\n', f'holdout_from = 2020\ndata_dir = "{ROOT / "calibration" / "data"}"\n')
    text = text.replace("data_years = [2012, 2015]", "data_years = [2012, 2021]", 1)
    path = tmp_path / "national.toml"
    path.write_text(text)
    problems = prior_years_problems(load_targets(path))
    assert len(problems) == 1 and "Initial High Tech Share" in problems[0] and "2021" in problems[0]


def test_national_model_constants_cite_no_holdout_year_of_a_fitted_series():
    targets = load_targets(ROOT / "calibration" / "targets" / "national.toml")
    files = {Path(s.file).name for s in targets.series} | {d.file for d in targets.dropped}
    structure = build_structure(targets.model)
    offending = []
    for var in structure.variables.values():
        if var.kind != "constant":
            continue
        comment = str(var.comment)
        if not any(f in comment for f in files):
            continue
        years = [int(y) for y in re.findall(r"\b(20[0-9]{2})\b", comment)]
        if any(y >= targets.holdout_from for y in years):
            offending.append(f"{var.name}: {comment}")
    assert offending == []
