"""Samples made chunk by chunk are the samples of the whole design, so ensembles need memory
for one chunk only; large Latin hypercubes are blocks of stratified samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from sdloop.experiments import uncertainty
from sdloop.experiments.uncertainty import UnitSampler


@pytest.mark.parametrize("method", ["lhs", "sobol", "random"])
def test_rows_in_chunks_are_the_rows_of_the_whole_design(method):
    whole = UnitSampler(4, 1000, method=method, seed=3).rows(0, 1000)
    sampler = UnitSampler(4, 1000, method=method, seed=3)
    pieces = np.concatenate([sampler.rows(start, start + 37) for start in range(0, 1000, 37)])
    np.testing.assert_array_equal(pieces, whole)
    assert whole.shape == (1000, 4) and ((whole >= 0) & (whole < 1)).all()


def test_small_designs_are_scipys():
    np.testing.assert_array_equal(UnitSampler(3, 500, method="lhs", seed=5).rows(0, 500),
                                  qmc.LatinHypercube(d=3, seed=5).random(500))
    np.testing.assert_array_equal(UnitSampler(3, 512, method="sobol", seed=5).rows(0, 512),
                                  qmc.Sobol(d=3, scramble=True, seed=5).random(512))
    np.testing.assert_array_equal(UnitSampler(3, 500, method="random", seed=5).rows(0, 500),
                                  np.random.default_rng(5).random((500, 3)))


def test_large_latin_hypercubes_are_stratified_blocks(monkeypatch):
    monkeypatch.setattr(uncertainty, "LHS_BLOCK", 100)
    rows = UnitSampler(2, 250, method="lhs", seed=1).rows(0, 250)
    for lo, hi in ((0, 100), (100, 200), (200, 250)):
        block = rows[lo:hi]
        for j in range(2):  # one point in each of the block's strata, in every dimension
            assert sorted(np.floor(block[:, j] * (hi - lo)).astype(int)) == list(range(hi - lo))
    assert not np.array_equal(rows[:100], rows[100:200])
    again = UnitSampler(2, 250, method="lhs", seed=1)
    np.testing.assert_array_equal(np.concatenate([again.rows(s, s + 30) for s in range(0, 250, 30)]), rows)
