"""``sdloop check``: each kind of problem, exit statuses, and the project models."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from analysis_helpers import FIXTURES
from sdloop.errors import ModelFileError
from sdloop.analysis.check import check_model

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ["goal_seeking.mdl", "exponential_growth.mdl", "logistic_growth.mdl", "sir.mdl", "sir.xmile",
         "oscillator.mdl", "builtins.mdl"]


def variant(tmp_path, old, new, name="variant.mdl"):
    path = tmp_path / name
    path.write_text((FIXTURES / "goal_seeking.mdl").read_text().replace(old, new))
    return path


def run_check(path) -> int:
    from sdloop.cli.analysis import add_check_parser

    parser = argparse.ArgumentParser()
    add_check_parser(parser.add_subparsers())
    args = parser.parse_args(["check", str(path)])
    return args.handler(args)


@pytest.mark.parametrize("name", CLEAN)
def test_clean_fixtures(name):
    assert check_model(FIXTURES / name) == []


def test_exit_statuses(tmp_path, capsys):
    assert run_check(FIXTURES / "goal_seeking.mdl") == 0
    assert run_check(FIXTURES / "units_mismatch.mdl") == 1
    out = capsys.readouterr().out
    assert out.strip() == f"{FIXTURES / 'units_mismatch.mdl'}:7: adjustment: expected Widget/Year, found Widget*Year"
    assert run_check(tmp_path / "missing.mdl") == 2
    broken = variant(tmp_path, "gap = goal - Level", "gap = goal - (Level")
    assert run_check(broken) == 2
    assert "variant.mdl:12: gap:" in capsys.readouterr().err


def test_every_undefined_name_is_listed(tmp_path):
    path = variant(tmp_path, "gap = goal - Level", "gap = goals - Levels")
    messages = [str(p) for p in check_model(path)]
    assert f"{path}:12: gap: undefined name 'goals'" in messages
    assert f"{path}:12: gap: undefined name 'Levels'" in messages


def test_simultaneous_equations(tmp_path):
    """No engine can run them: the file is refused (exit 2), naming the cycle and its lines."""
    path = variant(tmp_path, "gap = goal - Level", "gap = goal - adjustment")
    with pytest.raises(ModelFileError) as err:
        check_model(path)
    assert err.value.line == 7 and "adjustment -> gap -> adjustment" in err.value.message
    assert "line 7" in err.value.message and "line 12" in err.value.message


def test_unused_and_undocumented_constants(tmp_path):
    path = variant(tmp_path, "goal = 100\n\t~\tWidget\n\t~\tAssumed (test fixture).",
                   "goal = 100\n\t~\tWidget\n\t~\tAssumed (test fixture).\n\t|\n\n"
                   "spare = 3\n\t~\t\n\t~\tA number.")
    messages = {p.message for p in check_model(path) if p.variable == "spare"}
    assert messages == {
        "constant is not used by any equation",
        "constant has no units",
        "constant's comment does not say where its value comes from "
        "(a source, a statistic, or 'Assumed' with the range tried)",
    }


def test_sidecar_entries_are_checked(tmp_path):
    model = tmp_path / "sir.mdl"
    model.write_text((FIXTURES / "sir.mdl").read_text())
    (tmp_path / "sir.loops.toml").write_text(
        '[[loop]]\nname = "Contagion"\npolarity = "B"\nvariables = ["Infected", "infection"]\n\n'
        '[[loop]]\nname = "Ghost"\nvariables = ["Infected", "recovery", "Recovered"]\n')
    messages = [str(p) for p in check_model(model)]
    sidecar = tmp_path / "sir.loops.toml"
    assert messages == [f"{sidecar}:1: Contagion: expected polarity B, found R",
                        f"{sidecar}:6: Ghost: matches no feedback loop of the model"]


@pytest.mark.parametrize("name", ["policy_loop.mdl", "sector_lifecycle.mdl"])
def test_project_models_can_be_checked(name):
    path = ROOT / "models" / name
    if not path.exists():
        pytest.skip(f"{name} not in this tree")
    problems = check_model(path)
    assert all(str(p).startswith(str(path)) for p in problems)
