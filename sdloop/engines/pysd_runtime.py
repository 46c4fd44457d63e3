"""PySD as sdloop runs it: its warnings silenced, numpy's global generator seeded for each
run, and scalar lookups interpolated with ``numpy.interp`` instead of PySD's xarray
interpolation (same numbers, much faster).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

import numpy as np

RANDOM_SEED = 0  # numpy's global generator at the start of every run (RANDOM functions)


@contextmanager
def quiet_pysd() -> Iterator[None]:
    """Silence PySD's deprecation noise under pandas 3, its notes on mixed arrays, lookups held at their
    ends and delay orders reduced (what Vensim does without a word), nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The inplace keyword in DataFrame\.set_index")
        warnings.filterwarnings("ignore", message=r"chardet\.universaldetector is deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pysd\.")
        # PySD names the lookup first: "_hardcodedlookup_x\nextrapolating data above ..."
        warnings.filterwarnings("ignore", message=r"[\s\S]*extrapolating data (above|below)")
        # DELAY N/DELAY3 with a delay below order x TIME STEP: the order reduced, as Vensim and the engines do
        warnings.filterwarnings("ignore", message=r"[\s\S]*Delay time very small, casting delay order")
        # an array defined by constants for some elements, equations for others (harmless)
        warnings.filterwarnings("ignore", message=r"Variable '.*' is defined with different types")
        yield


@contextmanager
def seeded_random(seed: int = RANDOM_SEED) -> Iterator[None]:
    """numpy's global generator seeded for one run, restored after it.

    PySD draws RANDOM UNIFORM/NORMAL/... from numpy's global generator and ignores the
    seed argument Vensim gives them, so without this each run of such a model differs.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


with quiet_pysd():  # pysd imported silenced; pysd_translation and pysd_model take it from here
    import pysd
    from pysd.py_backend.lookups import HardcodedLookups


class FastLookups(HardcodedLookups):
    """A PySD lookup that interpolates a scalar argument with ``numpy.interp``.

    ``numpy.interp`` holds the end values outside the table, as Vensim does. Anything
    else (subscripted lookups, XMILE extrapolation, hold-backward tables) goes to PySD.
    """

    def __call__(self, x, final_subs=None):
        data = self.data
        if (
            self.is_float
            and self.interp == "interpolate"
            and np.ndim(x) == 0
            and getattr(data, "ndim", 0) == 1
        ):
            if getattr(self, "_fast_source", None) is not data:
                self._fast_x = np.asarray(data["lookup_dim"].values, dtype=float)
                self._fast_y = np.asarray(data.values, dtype=float)
                self._fast_source = data
            return float(np.interp(float(x), self._fast_x, self._fast_y))
        return super().__call__(x, final_subs)


def speed_up_lookups(pysd_model) -> int:
    """Switch every hard-coded lookup of a loaded PySD model to FastLookups; return how many."""
    module = pysd_model.components._components
    count = 0
    for value in vars(module).values():
        if type(value) is HardcodedLookups:
            value.__class__ = FastLookups
            count += 1
    return count
