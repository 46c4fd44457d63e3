"""The sector model's historical run against published magnitudes (models/anchors.toml).

Each comparable anchor must be within a factor of 2 of the published values (geometric mean of
the ratios over its years) and no single year off by more than a factor of 3; anchors on another
definition (comparable = false) must say why. Runs: case file < fitted values < scenario < the
historical strategy, with the CALIBRATED values (calibration/fitted/CASE.toml, what `make run`
uses) and, separately, on the documented case values alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS

FITTED = MODELS.parent / "calibration" / "fitted"
from sdloop.engines.numpy_engine import Engine
from sdloop.experiments.anchors import load_anchors, magnitude_table, summary
from sdloop.experiments.overrides import load_case, load_collection


@pytest.fixture(scope="module", params=["calibrated", "case values"])
def table(request):
    anchors = load_anchors(MODELS / "anchors.toml")
    engine = Engine(MODELS / "sector_lifecycle.mdl")
    strategies = load_collection(MODELS / "strategies.toml")
    scenarios = load_collection(MODELS / "scenarios.toml")

    def run_case(case):
        params = dict(load_case(MODELS / "cases" / f"{case}.toml").parameters)
        if request.param == "calibrated":
            params.update(load_case(FITTED / f"{case}.toml").parameters)
        params.update(scenarios[anchors.scenario(case)].parameters)
        params.update(strategies[anchors.strategy].for_case(case).parameters)
        return engine.run_frame(params)

    return magnitude_table(anchors, run_case)


def test_every_anchor_case_and_year_is_covered(table):
    assert set(table.case) == {"nev", "ic"}
    assert table.year.max() <= 2022
    names = set(table.anchor)
    for wanted in ("NEV sales", "NEV exports", "NEV fiscal support, cumulative", "IC market",
                   "IC self-sufficiency (IC Insights)", "IC exports (customs)", "IC imports (customs)",
                   "IC industry revenue (CSIA)", "Semiconductor equipment sales to China",
                   "Big Fund I and II, registered capital"):
        assert wanted in names


def test_comparable_anchors_are_within_a_factor_of_two(table):
    rows = summary(table)
    comparable = rows[rows.comparable]
    off = comparable[(comparable.ratio_geomean < 0.5) | (comparable.ratio_geomean > 2)]
    assert off.empty, off.to_string()
    points = table[table.comparable]
    wild = points[(points.ratio < 1 / 3) | (points.ratio > 3)]
    assert wild.empty, wild.to_string()


def test_incomparable_anchors_say_why(table):
    for _, row in table[~table.comparable].iterrows():
        assert len(row.reason) > 40, row.anchor
    assert np.isfinite(table.ratio).all()
