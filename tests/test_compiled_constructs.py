"""Constructs the C kernel once left to the numpy engine, now compiled natively: ACTIVE
INITIAL (its initial value while initial values are computed, its equation from the initial
time on) and XMILE non-negative stocks and flows (a stock clipped at zero after each step, a
flow at zero whichever side of the stock it is on). Parity with PySD to 1e-9, in one call
with constants varying between runs, and a check that the construct changes the numbers."""

from __future__ import annotations

import numpy as np

from conftest import FIXTURES
from sdloop.engines.numpy_engine import compare_frames

TOLERANCE = 1e-9
ACTIVE = FIXTURES / "engine" / "active_initial.mdl"
NON_NEGATIVE = FIXTURES / "engine" / "non_negative_signs.xmile"


def _engines(path):
    from sdloop.engines.compiled import CompiledEngine
    from sdloop.engines.pysd_model import Model

    return CompiledEngine(path), Model(path)


def test_active_initial_runs_in_the_kernel_with_pysd_numbers(compiler):
    """Three ACTIVE INITIALs, of constants, of Time and of a stock: the stock starts from their
    initial values (5 + 1 + 7), INITIAL keeps them, the recorded values are the equations'."""
    engine, model = _engines(ACTIVE)
    ours = engine.run_frame()
    assert compare_frames(ours, model.run()) <= TOLERANCE
    first = ours.iloc[0]
    assert first["Level"] == 13 and first["frozen"] == 7 + 5
    assert first["from constants"] == 6 and first["from time"] == 3 and first["from stock"] == 13 / 4
    rates, taus = np.array([0.5, 3.0, 8.0]), np.array([2.0, 4.0, 1.5])
    result = engine.run({"rate k": rates, "tau": taus}, n=3)
    for i in range(3):
        reference = model.run({"rate k": rates[i], "tau": taus[i]})
        assert compare_frames(result.frame(i), reference) <= TOLERANCE, i


def test_non_negative_stocks_and_flows_run_in_the_kernel_with_pysd_numbers(compiler, tmp_path):
    """A non-negative tank with a non-negative inflow, a non-negative outflow and a plain
    outflow; a plain stock beside it goes negative. Without <non_negative/> the tank and the
    flows go negative: the clipping is what the test sees."""
    from sdloop.engines.pysd_model import Model

    engine, model = _engines(NON_NEGATIVE)
    ours = engine.run_frame()
    assert compare_frames(ours, model.run()) <= TOLERANCE
    plain = tmp_path / "plain.xmile"
    plain.write_text(NON_NEGATIVE.read_text().replace("<non_negative/>", ""))
    unclipped = Model(plain).run()
    assert unclipped["Tank"].min() < -1 and unclipped["filling"].min() < 0 and unclipped["draining"].min() < 0
    assert ours["Tank"].min() == 0 and ours["filling"].min() == 0 and ours["draining"].min() == 0
    assert ours["Debt"].min() < 0  # no clipping without the flag
    drains = np.array([0.5, 3.0, 6.0])
    result = engine.run({"drain rate": drains, "fill rate": 2.5}, n=3)
    for i, drain in enumerate(drains):
        reference = model.run({"drain rate": drain, "fill rate": 2.5})
        assert compare_frames(result.frame(i), reference) <= TOLERANCE, drain
