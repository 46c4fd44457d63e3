"""Loop groups of a sidecar: membership rules and dominance scored per group."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS
from sdloop.analysis.dominance import describe_groups, group_scores
from sdloop.analysis.loop_analysis import analyse_model
from sdloop.analysis.loops import load_group_rules, load_loop_names, loop_groups
from sdloop.errors import ModelFileError


@pytest.fixture(scope="module")
def policy_analysis():
    return analyse_model(MODELS / "policy_loop.mdl", dominance=True)


def test_every_loop_through_the_goal_is_in_goal_adaptation(policy_analysis):
    path = MODELS / "policy_loop.mdl"
    groups = loop_groups(policy_analysis.loops, load_loop_names(path), load_group_rules(path))
    for loop in policy_analysis.loops:
        if "Capability Goal" in loop.variables:
            assert groups[loop.id] == "Goal adaptation"
        elif "Performance Gap" in loop.variables:
            assert groups[loop.id] == "Policy response to the gap"
    decay = [loop for loop in policy_analysis.loops if len(loop.variables) == 2
             and loop.variables[0] in ("Talent", "Technology Stock", "Technological Capability")]
    assert decay and all(groups[loop.id] == "Decay and obsolescence" for loop in decay)
    assert set(groups) == {loop.id for loop in policy_analysis.loops}  # every loop has a mechanism


def test_group_shares_add_up_to_the_partition(policy_analysis):
    path = MODELS / "policy_loop.mdl"
    dominance = policy_analysis.dominance
    groups = loop_groups(policy_analysis.loops, load_loop_names(path), load_group_rules(path))
    scores = group_scores(dominance, groups)
    shares = scores.xs("share", axis=1, level="score").sum(axis=1)
    active = dominance.relative_scores[list(dominance.partitions[0])].abs().sum(axis=1) > 0
    np.testing.assert_allclose(shares[active], 1.0, rtol=1e-9)
    nets = scores.xs("net", axis=1, level="score")
    assert (nets.abs() <= scores.xs("share", axis=1, level="score") + 1e-12).all().all()
    lines = describe_groups(scores)
    assert any(line.startswith("Goal adaptation: ") for line in lines)


def test_group_rule_needs_variables(tmp_path):
    model = tmp_path / "m.mdl"
    model.write_text("")
    (tmp_path / "m.loops.toml").write_text('[[group]]\nname = "x"\nthrough = []\n')
    with pytest.raises(ModelFileError, match="through"):
        load_group_rules(model)
