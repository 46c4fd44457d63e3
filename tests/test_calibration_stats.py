"""Fit statistics against values computed by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.stats import fit_statistics, mape, r_squared, rmse, theil

S = [2.0, 4.0, 6.0]
A = [1.0, 4.0, 5.0]


def test_rmse_mape_by_hand():
    # errors 1, 0, 1: MSE = 2/3
    assert rmse(S, A) == pytest.approx(math.sqrt(2 / 3))
    # |1|/1, 0/4, |1|/5 -> (1 + 0 + 0.2) / 3 * 100 = 40
    assert mape(S, A) == pytest.approx(40.0)


def test_r_squared_is_squared_correlation_by_hand():
    # s - s_bar = -2, 0, 2; a - a_bar = -7/3, 2/3, 5/3
    # cov sum = 14/3 + 0 + 10/3 = 8; sum s^2 = 8; sum a^2 = 49/9 + 4/9 + 25/9 = 78/9
    r = 8 / math.sqrt(8 * 78 / 9)
    assert r_squared(S, A) == pytest.approx(r * r)


def test_theil_decomposition_by_hand():
    um, us, uc = theil(S, A)
    mse = 2 / 3
    bias2 = (4 - 10 / 3) ** 2  # s_bar 4, a_bar 10/3
    s_sd = math.sqrt(8 / 3)
    a_sd = math.sqrt(78 / 27)
    r = 8 / math.sqrt(8 * 78 / 9)
    assert um == pytest.approx(bias2 / mse)
    assert us == pytest.approx((s_sd - a_sd) ** 2 / mse)
    assert uc == pytest.approx(2 * (1 - r) * s_sd * a_sd / mse)
    assert um + us + uc == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_theil_components_sum_to_one(seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(size=12)
    s = a * rng.lognormal(0.1, 0.3, size=12) + rng.normal(0, 0.2, 12)
    um, us, uc = theil(s, a)
    assert min(um, us, uc) >= -1e-12
    assert um + us + uc == pytest.approx(1.0, abs=1e-12)


def test_pure_bias_and_pure_scale():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert theil(a + 1, a) == pytest.approx((1.0, 0.0, 0.0))
    # s = 2a - a_bar keeps the mean, doubles the deviations: r = 1, all error is U^S
    s = 2 * a - a.mean()
    assert theil(s, a) == pytest.approx((0.0, 1.0, 0.0))


def test_degenerate_cases():
    assert all(math.isnan(x) for x in theil([1, 2], [1, 2]))
    assert math.isnan(r_squared([3.0], [2.0]))
    stats = fit_statistics([3.0], [2.0])
    assert stats["n"] == 1 and stats["MAPE"] == pytest.approx(50.0)
    assert stats["UM"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        rmse([1, 2], [1])
