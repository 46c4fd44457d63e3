"""A DELAY1/3/N whose delay time is below order x TIME STEP runs with fewer stages, as in PySD.
The numpy and compiled engines fix the count when the structure is built, from the model's
values: an override (or a TIME STEP) that keeps the count runs and matches PySD; one that
changes it is refused with one line naming the delay and what changed it, never run with the
model's count (which gave numbers 0.34 off PySD without a word)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES
from sdloop.engines.numpy_engine import Engine, compare_frames
from sdloop.errors import OverrideError
from sdloop.structure.model import delay_stages
from test_cli import sdloop

DELAYS = FIXTURES / "corpus" / "delays.mdl"  # TIME STEP 0.25; 'short delay' 0.5 feeds DELAY N of order 6 and a DELAY3


def test_pysds_rule_gives_one_stage_fewer_while_order_times_time_step_exceeds_the_delay():
    assert delay_stages(6, 0.5, 0.25) == 2 and delay_stages(3, 0.75, 0.25) == 3
    assert delay_stages(3, 0.74, 0.25) == 2 and delay_stages(3, 0.2, 0.25) == 0
    assert list(delay_stages(6, np.array([0.3, 0.5, 1.0, 2.0]), 0.25)) == [1, 2, 4, 6]


def test_the_structure_records_each_delays_stage_count_and_delay_time():
    delays = {d.owner: d for d in Engine(DELAYS).structure.delays}
    assert (delays["dn short"].order, delays["dn short"].stages) == (6, 2)
    assert (delays["d3 short"].order, delays["d3 short"].stages) == (3, 2)
    assert (delays["d3"].order, delays["d3"].stages) == (3, 3)
    assert delays["dn short"].line == 10 and str(delays["dn short"].delay_time) == "short_delay"


@pytest.fixture(scope="module")
def reference():
    from sdloop.engines.pysd_model import Model

    return Model(DELAYS)


@pytest.fixture(params=["numpy", "compiled"])
def engine(request):
    if request.param == "numpy":
        return Engine(DELAYS)
    request.getfixturevalue("compiler")  # skipped where no kernel can be built
    from sdloop.engines.compiled import CompiledEngine

    return CompiledEngine(DELAYS)


def test_an_override_that_keeps_the_stage_count_runs_and_matches_pysd(engine, reference):
    values = np.array([0.5, 0.55, 0.7])  # 2 stages of 6 in each
    result = engine.run({"short delay": values})
    for i, value in enumerate(values):
        assert compare_frames(result.frame(i), reference.run({"short delay": float(value)})) <= 1e-9


@pytest.mark.parametrize("values", [0.45, 1.0, np.array([0.5, 0.45])])
def test_an_override_that_changes_the_stage_count_is_refused_with_the_delays_line(engine, values):
    with pytest.raises(OverrideError) as info:
        engine.run({"short delay": values})
    text = str(info.value)
    assert text.startswith(f"{DELAYS}:10: dn short: short delay changes its DELAY of order 6 to ")
    assert "--engine pysd" in text


def test_a_time_step_that_changes_the_stage_count_is_refused_and_one_that_keeps_it_runs():
    engine = Engine(DELAYS)
    with pytest.raises(OverrideError, match="TIME STEP changes its DELAY of order 6 to 4 stages"):
        engine.run({}, time_step=0.125)
    assert engine.run({}, time_step=0.25).n == 1


def test_the_command_line_refuses_it_in_one_line_and_pysd_runs_it(tmp_path):
    refused = sdloop("simulate", DELAYS, "--set", "short delay=0.45", "--out", tmp_path / "a.csv")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "dn short: short delay changes its DELAY of order 6 to 1 stages" in refused.stderr
    assert not (tmp_path / "a.csv").exists()
    ran = sdloop("simulate", DELAYS, "--set", "short delay=0.45", "--engine", "pysd", "--out", tmp_path / "b.csv")
    assert ran.returncode == 0, ran.stderr
