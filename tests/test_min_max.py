"""Nested MIN and MAX run as numpy.minimum / numpy.maximum in the numpy engine, with PySD's numbers."""

from __future__ import annotations

import numpy as np
import sympy

from sdloop.engines.min_max import recover_min_max
from sdloop.engines.numpy_engine import Engine, compare_frames
from sdloop.structure.vensim_functions import max_of, min_of

MODEL = """{UTF-8}
Clock = INTEG(1, 0)
	~	Year
	~	A clock that starts at 0.
	|
Ramp Time = 2
	~	Year
	~	Assumed (1-4 tried).
	|
Duration = 5
	~	Year
	~	Assumed (3-8 tried).
	|
Window = MAX(0, MIN(1, Clock/Ramp Time)-MAX(0, MIN(1, (Clock-Duration)/Ramp Time)))
	~	Dmnl
	~	Ramps up, holds, ramps down.
	|
Floor = 0.5
	~	Dmnl
	~	Assumed (0.1-1 tried).
	|
Scaled = (Window + 0.25) / MAX(Window, Floor) + MIN(Window, Floor, 0.7) + 1 / MAX(Clock - 3, Floor)
	~	Dmnl
	~	A division by a MAX and a MIN of three arguments.
	|
INITIAL TIME = 0
	~	Year
	~	Start.
	|
FINAL TIME = 12
	~	Year
	~	End.
	|
TIME STEP = 0.25
	~	Year
	~	Step.
	|
SAVEPER = TIME STEP
	~	Year
	~	Every step.
	|
"""


def test_piecewise_built_for_min_and_max_reads_back_as_min_and_max():
    x, y, z = sympy.symbols("x y z", real=True)
    nested = max_of(0, min_of(1, x) - max_of(0, min_of(1, y)))
    assert recover_min_max(nested) == sympy.Max(0, sympy.Min(1, x, evaluate=False)
                                                - sympy.Max(0, sympy.Min(1, y, evaluate=False), evaluate=False),
                                                evaluate=False)
    pushed = sympy.Piecewise((1 / x, x >= y), (1 / y, True))  # what sympy makes of 1/MAX(x, y)
    assert recover_min_max(pushed) == 1 / sympy.Max(x, y, evaluate=False)
    assert recover_min_max(sympy.Piecewise((1 / x, z >= y), (1 / y, True))).has(sympy.Piecewise)  # not a MAX
    assert recover_min_max(sympy.Piecewise((x, x >= y), (z, True))).has(sympy.Piecewise)


def test_nested_min_max_print_as_minimum_maximum_and_match_pysd(tmp_path):
    from sdloop.engines.pysd_model import load_model

    path = tmp_path / "windows.mdl"
    path.write_text(MODEL)
    engine = Engine(path)
    loop = engine.source().split("for k in range")[1]
    assert "where(" not in loop and "maximum(" in loop and "minimum(" in loop
    assert compare_frames(engine.run_frame(), load_model(path).run()) <= 1e-9
    ramp = np.array([0.5, 2.0, 4.0])
    result = engine.run({"Ramp Time": ramp}, columns=["Window", "Scaled"])
    for i, value in enumerate(ramp):
        one = load_model(path).run({"Ramp Time": float(value)})
        assert np.allclose(result["Window"][:, i], one["Window"], rtol=1e-9, atol=0)
        assert np.allclose(result["Scaled"][:, i], one["Scaled"], rtol=1e-9, atol=0)
