"""The simulation clock: INITIAL TIME, FINAL TIME, TIME STEP and SAVEPER checked before a run.

``check_clock`` refuses what no engine can run sensibly: a value that is not finite, a TIME STEP
that is not positive (PySD loops forever on a negative one), a FINAL TIME not after INITIAL TIME,
a SAVEPER that is not a whole multiple of TIME STEP, and a run of more than ``MAX_STEPS`` steps.
Values from the model file are reported at their line (``ModelFileError``); values given for the
run (``--final-time``, an engine's ``final_time=``) as an ``OverrideError``. Both exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from sdloop.errors import ModelFileError, OverrideError

if TYPE_CHECKING:
    from sdloop.structure.build import ModelStructure

NAMES = ("initial time", "final time", "time step", "saveper")
MAX_STEPS = 100_000_000
_TOLERANCE = 1e-9


def check_clock(values: Mapping[str, float | None], *, path: str | Path | None = None,
                lines: Mapping[str, int | None] | None = None, given: frozenset[str] | set[str] = frozenset()) -> None:
    """Raise for an unusable clock. ``values``: lower-case control name -> value (None: unknown,
    e.g. computed from a stock); ``given``: the names whose values came from the command, not the file."""
    lines = lines or {}

    def fail(name: str, message: str) -> None:
        if name in given:
            raise OverrideError(message, variable=name.upper() if name != "final time" else "--final-time")
        raise ModelFileError(message, file=path, line=lines.get(name), variable=name.upper())

    for name in NAMES:
        value = values.get(name)
        if value is not None and not math.isfinite(value):
            fail(name, f"{name.upper()} is {value}: not a finite number")
    t0, t1, dt, save = (values.get(n) for n in NAMES)
    if dt is not None and dt <= 0:
        fail("time step", f"TIME STEP is {dt:g}: it must be positive")
    if t0 is not None and t1 is not None and t1 <= t0:
        fail("final time", f"FINAL TIME {t1:g} is not after INITIAL TIME {t0:g}")
    if dt is not None and save is not None:
        ratio = save / dt
        if save <= 0 or ratio < 1 - _TOLERANCE or abs(ratio - round(ratio)) > _TOLERANCE * max(1.0, ratio):
            fail("saveper", f"SAVEPER {save:g} is not a whole multiple of TIME STEP {dt:g}")
    if t0 is not None and t1 is not None and dt is not None and (t1 - t0) / dt > MAX_STEPS:
        fail("final time" if "final time" in given else "time step",
             f"the run would take {(t1 - t0) / dt:,.0f} time steps of {dt:g} from {t0:g} to {t1:g} "
             f"(at most {MAX_STEPS:,}); use a larger TIME STEP or an earlier FINAL TIME")


def structure_clock(structure: "ModelStructure", given: Mapping[str, float] | None = None) -> dict[str, float | None]:
    """The clock values of a model structure (None for one computed from the model's state)."""
    given = {k.lower(): float(v) for k, v in (given or {}).items()}
    values: dict[str, float | None] = {}
    for name in NAMES:
        if name in given:
            values[name] = given[name]
            continue
        if structure.get(name) is None:
            values[name] = values.get("time step") if name == "saveper" else None
            continue
        try:
            values[name] = structure.control(name, given)
        except (ModelFileError, TypeError, ValueError, KeyError):
            values[name] = None
    return values


def check_structure_clock(structure: "ModelStructure", given: Mapping[str, float] | None = None) -> None:
    """``check_clock`` on a structure's own control values and those ``given`` for a run."""
    lines = {name: (structure[name].line if structure.get(name) is not None else None) for name in NAMES}
    check_clock(structure_clock(structure, given), path=structure.path, lines=lines,
                given=frozenset(k.lower() for k in (given or {})))
