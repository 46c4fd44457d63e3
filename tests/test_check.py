"""``sdloop check``: each kind of problem, its severity, exit statuses, XMILE units, the project models."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from analysis_helpers import FIXTURES
from conftest import MODELS
from sdloop.errors import ModelFileError
from sdloop.analysis.check import check_model

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ["goal_seeking.mdl", "exponential_growth.mdl", "logistic_growth.mdl", "sir.mdl", "sir.xmile",
         "oscillator.mdl", "builtins.mdl"]


def variant(tmp_path, old, new, name="variant.mdl"):
    path = tmp_path / name
    path.write_text((FIXTURES / "goal_seeking.mdl").read_text().replace(old, new))
    return path


def run_check(path, *options) -> int:
    from sdloop.cli.analysis import add_check_parser

    parser = argparse.ArgumentParser()
    add_check_parser(parser.add_subparsers())
    args = parser.parse_args(["check", str(path), *options])
    return args.handler(args)


def textbook(tmp_path):
    """goal_seeking.mdl as a textbook prints it: no source comments."""
    text = (FIXTURES / "goal_seeking.mdl").read_text().replace("Assumed (test fixture).", "")
    path = tmp_path / "textbook.mdl"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", CLEAN)
def test_clean_fixtures(name):
    assert check_model(FIXTURES / name) == []


def test_exit_statuses(tmp_path, capsys):
    assert run_check(FIXTURES / "goal_seeking.mdl") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"{FIXTURES / 'goal_seeking.mdl'}: clean (no errors, no warnings)"
    assert run_check(FIXTURES / "units_mismatch.mdl") == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == (f"{FIXTURES / 'units_mismatch.mdl'}:7: error: adjustment: "
                                    "expected Widget/Year, found Widget*Year")
    assert captured.err.strip() == f"1 error, 0 warnings in {FIXTURES / 'units_mismatch.mdl'}"
    assert run_check(tmp_path / "missing.mdl") == 2
    broken = variant(tmp_path, "gap = goal - Level", "gap = goal - (Level")
    assert run_check(broken) == 2
    assert "variant.mdl:12: gap:" in capsys.readouterr().err


def test_a_textbook_model_passes_with_warnings_and_fails_strict(tmp_path, capsys):
    path = textbook(tmp_path)
    assert run_check(path) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and all(": warning: " in line for line in lines)
    assert f"{path}:17: warning: goal: constant's comment does not say where" in captured.out
    assert captured.err.strip() == f"0 errors, 2 warnings in {path}"
    assert run_check(path, "--strict") == 1


def test_severities(tmp_path):
    path = variant(tmp_path, "gap = goal - Level", "gap = goals - Level")
    severity = {p.message: p.severity for p in check_model(path)}
    assert severity["undefined name 'goals'"] == "error"
    assert severity["constant is not used by any equation"] == "warning"  # goal, now unused
    path = variant(tmp_path, "gap = goal - Level", "gap = goal - adjustment", name="loop.mdl")
    with pytest.raises(ModelFileError, match="simultaneous"):  # worse than an error: no engine can run it
        check_model(path)
    path = variant(tmp_path, "Widget/Year\n\t~\tCloses", "\n\t~\tCloses", name="nounits.mdl")
    (problem,) = check_model(path)
    assert (problem.variable, problem.message, problem.severity) == ("adjustment", "flow has no units", "warning")


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
def test_project_models_pass_strict(name, capsys):
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{name} not in this tree")
    assert run_check(path, "--strict") == 0, capsys.readouterr().out


STELLA = FIXTURES / "xmile" / "stella_units.xmile"


def test_xmile_units_follow_xmile_conventions():
    """per, 1/time, declared names and aliases, unitless, time units from sim_specs."""
    assert check_model(STELLA) == []


def test_xmile_unit_mismatch_still_found(tmp_path):
    path = tmp_path / "eggs.xmile"
    path.write_text(STELLA.read_text().replace("<units>eggs per time</units>", "<units>eggs per year</units>"))
    messages = [p.report() for p in check_model(path)]
    assert f"{path}:31: error: Eggs in Store: expected eggs/Month, found eggs/Year (inflow 'laying')" in messages
    assert f"{path}:48: error: laying: expected eggs/Year, found eggs/Month" in messages
