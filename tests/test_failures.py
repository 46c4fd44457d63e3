"""Every failure ends in one line and its documented exit status (issues #10 and #16).

Bad options and clocks are refused before any work starts (exit 2); TOML values that are not
finite name their TOML line; an interrupted or terminated command cleans up and exits 130/143;
output closed early (``| head``) is quiet. Most checks call ``main`` in this process (fast);
signals and pipes need a real subprocess.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, MODELS, ROOT
from sdloop.cli.main import main

GOOD = FIXTURES / "core" / "goal_lookup.mdl"
PROJECT = MODELS / "sector.project.toml"


def sdloop(capsys, *args) -> tuple[int, str]:
    """Run the CLI in this process; its exit status and standard error."""
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines, "no message"
    return lines[-1]


def model_with(tmp_path: Path, **control: str) -> Path:
    """goal_lookup.mdl with some control equations replaced (``time_step="-1"``)."""
    text = GOOD.read_text()
    for key, value in control.items():
        name = key.replace("_", " ").upper()
        start = text.index(f"{name} = ")
        end = text.index(" ~", start)
        text = text[:start] + f"{name} = {value}" + text[end:]
    path = tmp_path / "clock.mdl"
    path.write_text(text)
    return path


def line_of(path: Path, name: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(f"{name} = "))


# options ------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["ensemble", PROJECT, "--seed", "-1"], "a seed is a whole number from 0"),
    (["ensemble", PROJECT, "--sobol", "-4"], "must be 0 or more"),
    (["ensemble", PROJECT, "--samples", "0"], "must be at least 1"),
    (["ensemble", PROJECT, "--workers", "two"], "is not a whole number"),
    (["ensemble", PROJECT, "--scheduler", "not a url"], "is not a scheduler address"),
    (["run", PROJECT, "--cases", ""], "an empty list"),
    (["run", PROJECT, "--cases", "nev,,ic"], "has an empty name"),
    (["run", PROJECT, "--scenarios", "baseline,baseline"], "'baseline' given twice"),
    (["simulate", GOOD, "--final-time", "inf"], "'inf' is not a finite number"),
    (["simulate", GOOD, "--final-time", "nan"], "'nan' is not a finite number"),
    (["bench", "--sizes", "10,-1"], "must be at least 1"),
])
def test_bad_options_are_refused_before_any_work(capsys, tmp_path, args, words):
    status, err = sdloop(capsys, *args, "--results" if args[0] in ("run", "ensemble") else "--json",
                         *([tmp_path] if args[0] in ("run", "ensemble") else []))
    assert status == 2
    assert words in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_sobol_not_a_power_of_two(capsys, tmp_path):
    status, err = sdloop(capsys, "ensemble", PROJECT, "--sobol", "6", "--results", tmp_path)
    assert status == 2 and "--sobol: 6 is not a power of 2" in one_line(err)


def test_an_unreachable_scheduler_is_refused_within_the_stated_timeout(capsys, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    status, err = sdloop(capsys, "ensemble", PROJECT, "--scheduler", f"tcp://127.0.0.1:{port}", "--results", tmp_path)
    assert status == 2
    assert f"no dask scheduler answers at tcp://127.0.0.1:{port} within 5 s" in one_line(err)
    assert time.monotonic() - start < 30
    assert list(tmp_path.iterdir()) == []


def test_something_that_is_not_a_scheduler_is_refused(capsys, tmp_path):
    with socket.socket() as server:  # accepts the connection, then says nothing dask understands
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        status, err = sdloop(capsys, "ensemble", PROJECT, "--scheduler", f"127.0.0.1:{port}", "--results", tmp_path)
    assert status == 2 and "no dask scheduler answers" in one_line(err)


# the clock ----------------------------------------------------------------------------------

@pytest.mark.parametrize("control, variable, words", [
    ({"time_step": "-1"}, "TIME STEP", "TIME STEP is -1: it must be positive"),
    ({"time_step": "0"}, "TIME STEP", "TIME STEP is 0: it must be positive"),
    ({"final_time": "-5"}, "FINAL TIME", "FINAL TIME -5 is not after INITIAL TIME 0"),
    ({"final_time": "0"}, "FINAL TIME", "FINAL TIME 0 is not after INITIAL TIME 0"),
    ({"saveper": "0.3"}, "SAVEPER", "SAVEPER 0.3 is not a whole multiple of TIME STEP 0.125"),
    ({"final_time": "1e12"}, "TIME STEP", "time steps of 0.125"),
])
@pytest.mark.parametrize("command", [["check"], ["simulate"], ["simulate", "--engine", "numpy"]])
def test_an_unusable_clock_is_refused_at_its_line(capsys, tmp_path, control, variable, words, command):
    path = model_with(tmp_path, **control)
    status, err = sdloop(capsys, *command, path, *(["--out", tmp_path / "out.csv"] if command[0] != "check" else []))
    assert status == 2
    line = one_line(err)
    assert f"{path}:{line_of(path, variable)}: {variable}: " in line or (
        variable == "TIME STEP" and "time steps" in words and f"{path}:" in line)
    assert words in line
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("engine", ["pysd", "numpy"])
def test_a_final_time_before_the_start_names_the_option(capsys, tmp_path, engine):
    status, err = sdloop(capsys, "simulate", GOOD, "--engine", engine, "--final-time", "-3")
    assert status == 2
    assert "--final-time: FINAL TIME -3 is not after INITIAL TIME 0" in one_line(err)


def test_euler_refuses_an_unusable_clock():
    from sdloop.engines.euler import simulate
    from sdloop.errors import ModelFileError, OverrideError
    from sdloop.structure.build import build_structure

    structure = build_structure(GOOD)
    with pytest.raises(OverrideError, match="FINAL TIME -1 is not after"):
        simulate(structure, final_time=-1)
    with pytest.raises(ModelFileError, match="TIME STEP is 0"):
        simulate(structure, {"TIME STEP": 0})


# TOML and --set values -----------------------------------------------------------------------

@pytest.mark.parametrize("body, line, variable, words", [
    ('[parameters]\n"Capacity" = nan\n', 2, "Capacity", "nan is not a finite number"),
    ('[parameters]\n"Capacity" = 3\n"Lifetime" = -inf\n', 3, "Lifetime", "-inf is not a finite number"),
    ('[parameters]\n"Capacity" = 1' + "0" * 400 + "\n", 2, "Capacity", "too large for a number"),
])
def test_a_toml_value_that_is_not_finite_names_its_line(capsys, tmp_path, body, line, variable, words):
    case = tmp_path / "case.toml"
    case.write_text(body)
    status, err = sdloop(capsys, "simulate", GOOD, "--case", case, "--out", tmp_path / "out.csv")
    assert status == 2
    assert f"{case}:{line}: {variable}: " in one_line(err) and words in one_line(err)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_set_value_that_is_not_finite(capsys, value):
    status, err = sdloop(capsys, "simulate", GOOD, "--set", f"Capacity={value}")
    assert status == 2 and f"--set: Capacity: value '{value}' is not a finite number" in one_line(err)


def test_a_case_file_that_is_not_utf8_or_is_a_folder(capsys, tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'description = "caf\xe9"\n')
    status, err = sdloop(capsys, "simulate", GOOD, "--case", latin)
    assert status == 2 and f"{latin}:1: not UTF-8 text (byte 0xe9)" in one_line(err)
    (tmp_path / "folder.toml").mkdir()
    status, err = sdloop(capsys, "simulate", GOOD, "--case", tmp_path / "folder.toml")
    assert status == 2 and "is a folder, not a TOML file" in one_line(err)


def test_an_empty_collection_and_a_dotted_name(capsys, tmp_path):
    from sdloop.errors import OverrideError
    from sdloop.experiments.overrides import load_collection

    empty = tmp_path / "strategies.toml"
    empty.write_text("# only a comment\n")
    with pytest.raises(OverrideError, match="no entries"):
        load_collection(empty)
    dotted = tmp_path / "dotted.toml"
    dotted.write_text('[a.b]\ndescription = "x"\n[a.b.parameters]\n')
    with pytest.raises(OverrideError, match="a dot in a table name"):
        load_collection(dotted)


# files and folders ---------------------------------------------------------------------------

def test_out_under_a_file_names_the_path(capsys, tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    status, err = sdloop(capsys, "simulate", GOOD, "--out", tmp_path / "plain" / "run.csv")
    assert status == 2
    assert f"{tmp_path / 'plain'}: is a file, where a folder is needed" in one_line(err)
    assert (tmp_path / "plain").read_text() == "not a folder"


def test_results_under_a_file(capsys, tmp_path):
    (tmp_path / "plain").write_text("x")
    status, err = sdloop(capsys, "run", PROJECT, "--results", tmp_path / "plain" / "r", "--only", "metrics")
    assert status == 2 and "plain" in one_line(err)


def test_os_errors_are_described_with_their_path():
    import errno

    from sdloop.cli.failures import describe_os_error

    message, status = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/r/x.csv"))
    assert status == 1 and message.startswith("/r/x.csv: no space left on the device")
    message, status = describe_os_error(OSError(errno.EROFS, "Read-only file system", "/r"))
    assert status == 2 and "read-only file system" in message


def test_an_unexpected_exception_is_one_line_saying_it_is_a_bug(capsys, monkeypatch):
    import sdloop.cli.simulate as simulate

    def boom(args):
        raise ValueError("something inside\nsecond line")

    monkeypatch.setattr(simulate, "run_simulate", boom)
    status, err = sdloop(capsys, "simulate", GOOD)
    assert status == 1
    assert one_line(err) == ("sdloop: internal error: ValueError: something inside (a bug in sdloop, not in your "
                             "input; --debug shows the traceback)")


# signals and pipes (real processes) ----------------------------------------------------------

def _spawn(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sdloop.cli", *map(str, args)], text=True,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}, **kwargs)


def test_output_closed_early_is_quiet():
    process = _spawn("simulate", MODELS / "sector_lifecycle.mdl", "--engine", "numpy", stdout=subprocess.PIPE)
    first = process.stdout.readline()  # about 300 kB follow: more than a pipe holds
    process.stdout.close()  # `sdloop simulate ... | head -1`
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert first.startswith("time,")
    assert "Traceback" not in err and "error" not in err and "Broken" not in err


def test_sigterm_is_handled_like_ctrl_c_and_leaves_nothing_half_written(tmp_path):
    process = _spawn("run", PROJECT, "--results", tmp_path, "--only", "metrics", "--no-cache", stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".incomplete-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(tmp_path.glob(".incomplete-*")), "the run never started"
    process.send_signal(signal.SIGTERM)
    try:
        err = process.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"no exit within 120 s of SIGTERM: {process.communicate()[1][-2000:]}")
    assert process.returncode == 143, err
    assert "sdloop: terminated" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_equation_is_refused_at_its_line(capsys, tmp_path):
    """Found by tests/test_fuzz.py: a doubled '|' made PySD drop every later equation (the control
    section too) and the numpy engine fail with KeyError."""
    text = GOOD.read_text()
    first_bar = text.index("|")
    path = tmp_path / "bars.mdl"
    path.write_text(text[:first_bar + 1] + "\n\t|" + text[first_bar + 1:])
    line = text[:first_bar].count("\n") + 2
    for command in (["simulate", path], ["check", path]):
        status, err = sdloop(capsys, *command)
        assert status == 2
        assert f"{path}:{line}: an empty equation" in one_line(err)


def test_a_sigterm_whose_exception_was_swallowed_still_publishes_nothing_and_exits_143(tmp_path, capsys):
    """Python ignores an exception raised inside __del__: a SIGTERM arriving there went unseen and
    the run finished with exit 0. The handler records the signal, and the result is not published."""
    import gc

    import importlib

    cli_main = importlib.import_module("sdloop.cli.main")

    class SwallowsTerm:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler's Terminated is ignored inside __del__
            for _ in range(10_000):  # the handler runs between these bytecodes, still inside __del__
                pass

    real = cli_main.build_parser

    def parser_that_loses_a_sigterm():
        SwallowsTerm()
        gc.collect()
        return real()

    cli_main.build_parser = parser_that_loses_a_sigterm
    try:
        status = cli_main.main(["run", str(PROJECT), "--results", str(tmp_path), "--only", "metrics",
                                "--cases", "nev", "--scenarios", "baseline", "--strategies", "no_policy"])
    finally:
        cli_main.build_parser = real
    err = capsys.readouterr().err
    assert status == 143, err
    assert "sdloop: terminated" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


AUDIT_MODEL = """{UTF-8}
Stock = INTEG(Inflow, 1) ~ Widgets ~ Start (test). |
Inflow = Stock * Rate ~ Widgets/Year ~ Flow (test). |
Rate = RATE ~ 1/Year ~ Assumed (test). |
Zero = 0 ~ Year ~ Assumed (test). |
INITIAL TIME = 0 ~ Year ~ Start. |
FINAL TIME = 2 ~ Year ~ End. |
TIME STEP = 1 ~ Year ~ Step. |
SAVEPER = TIME STEP ~ Year ~ Save. |
"""


def test_out_never_replaces_a_symlink_a_pipe_or_a_device(tmp_path, capsys):
    """Found by the audit: the rename over --out replaced whatever the path named (as root,
    --out /dev/full replaced the device with a file)."""
    model = tmp_path / "m.mdl"
    model.write_text(AUDIT_MODEL.replace("RATE", "0.1"))
    (tmp_path / "t.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "t.csv")
    os.mkfifo(tmp_path / "p.fifo")
    for target, kind in (("link.csv", "a symbolic link"), ("p.fifo", "a named pipe")):
        status, err = sdloop(capsys, "simulate", model, "--engine", "numpy", "--out", tmp_path / target)
        assert status == 2 and f"is {kind}" in err and "Traceback" not in err, err
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "t.csv").read_text() == "old\n"
    assert (tmp_path / "p.fifo").is_fifo()


def test_a_constant_that_divides_by_zero_is_named_at_its_line_in_every_engine(tmp_path, capsys):
    model = tmp_path / "div0.mdl"
    model.write_text(AUDIT_MODEL.replace("RATE", "1/0"))
    for engine in ("pysd", "numpy", "auto"):
        status, err = sdloop(capsys, "simulate", model, "--engine", engine)
        assert status == 2 and f"{model}:4: Rate: divides by zero" in one_line(err), (engine, err)


def test_loops_run_on_a_model_whose_run_divides_by_zero(tmp_path, capsys):
    model = tmp_path / "div0b.mdl"
    model.write_text(AUDIT_MODEL.replace("RATE", "1/Zero"))
    status, err = sdloop(capsys, "loops", model)
    assert status == 0 and "Traceback" not in err and "internal error" not in err, err


def test_a_variable_named_like_a_function_pysd_calls_is_refused_on_the_pysd_path(tmp_path, capsys):
    """PySD writes EXP(1) as exp(1), which then calls the variable 'exp' (0.2 instead of 2.818)."""
    model = tmp_path / "n_exp.mdl"
    model.write_text(AUDIT_MODEL.replace("RATE", "0.1").replace(
        "Zero = 0 ~ Year ~ Assumed (test). |", "exp = 0.1 ~ Dmnl ~ Assumed (test). |\n"
                                              "Y = EXP(1) + exp ~ Dmnl ~ Assumed (test). |"))
    status, err = sdloop(capsys, "simulate", model, "--engine", "pysd", "--columns", "Y")
    assert status == 2 and "exp: the name hides the function 'exp'" in one_line(err), err
    out = tmp_path / "y.csv"
    status, err = sdloop(capsys, "simulate", model, "--engine", "numpy", "--columns", "Y", "--out", out)
    assert status == 0 and float(out.read_text().splitlines()[-1].split(",")[1]) == pytest.approx(np.e + 0.1)


def test_a_stock_without_its_initial_value_says_so(tmp_path, capsys):
    model = tmp_path / "badinit.mdl"
    model.write_text(AUDIT_MODEL.replace("RATE", "0.1").replace("INTEG(Inflow, 1)", "INTEG(Inflow, )"))
    status, err = sdloop(capsys, "simulate", model)
    assert status == 2 and f"{model}:2: Stock: INTEG needs its initial argument" in one_line(err), err


def test_sigterm_during_a_held_write_acts_once_the_write_is_done():
    """netCDF4/HDF5 hung for ever when SIGTERM interrupted it inside xarray's lock (audit): the
    signal now waits for the write, then ends the command."""
    from sdloop.errors import Terminated
    from sdloop.report.output import signals_held

    done = []
    with pytest.raises(Terminated):
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            done.append(True)
    assert done == [True]
