"""Property-based tests (Hypothesis): generated model files, TOML files and option values.

- Valid models from a small grammar (constants, stocks with inflows and outflows, auxiliaries,
  lookups, builtins MIN MAX ABS EXP IF THEN ELSE STEP, ACTIVE INITIAL) give the same numbers in PySD and the
  numpy engine (relative 1e-9), and in the compiled (C) engine (slow).
- Those models mutated (characters deleted, lines doubled, names swapped, bad bytes inserted):
  ``check`` and ``simulate`` end with exit 0, 1 or 2, one line and no traceback, and a failed
  run leaves the earlier result file untouched.
- Generated TOML case files and option values: the same promise.

Budgets: the ``fast`` budget runs in ``make test``; the ``ci`` budget (marked slow) in
``make test-slow``. Examples are derandomized, so a failure is the same on every machine.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from sdloop.cli.main import main

BUDGETS = {"fast": 6, "ci": 60}
BUDGET = [pytest.param("fast"), pytest.param("ci", marks=pytest.mark.slow)]
GOOD = FIXTURES / "core" / "goal_lookup.mdl"
_serial = itertools.count()


def budget(name: str, examples_scale: float = 1.0):
    return settings(max_examples=max(1, int(BUDGETS[name] * examples_scale)), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


# the grammar ------------------------------------------------------------------------------------

def number(draw, low=0.05, high=2.0) -> str:
    return repr(round(draw(st.floats(low, high, allow_nan=False)), 4))


@st.composite
def expressions(draw, names: list[str], depth: int = 2) -> str:
    """A finite expression over ``names`` (divisions only by 1 + |x|, EXP only of -|x|)."""
    leaf = st.one_of(st.sampled_from(names), st.floats(0.05, 2.0).map(lambda v: repr(round(v, 4))))
    if depth == 0:
        return draw(leaf)
    sub = expressions(names, depth - 1)
    form = draw(st.sampled_from(["leaf", "+", "-", "*", "div", "MIN", "MAX", "ABS", "EXP", "IF", "STEP"]))
    if form == "leaf":
        return draw(leaf)
    a, b = draw(sub), draw(sub)
    return {"+": f"({a} + {b})", "-": f"({a} - {b})", "*": f"({a} * {b})", "div": f"({a} / (1 + ABS({b})))",
            "MIN": f"MIN({a}, {b})", "MAX": f"MAX({a}, {b})", "ABS": f"ABS({a})", "EXP": f"EXP(-ABS({a}))",
            "IF": f"IF THEN ELSE({a} > {b}, {a}, {b})", "STEP": f"STEP({a}, {draw(st.integers(0, 8)) + 0.3})"}[form]


@st.composite
def models(draw) -> str:
    """A valid Vensim model: every flow is held within [-10, 10], so every value stays finite."""
    constants = [f"c{i}" for i in range(draw(st.integers(1, 3)))]
    stocks = [f"Stock {i}" for i in range(draw(st.integers(1, 2)))]
    equations = [f"{c} = {number(draw)}\n\t~\tDmnl\n\t~\tAssumed (generated).\n\t|" for c in constants]
    names = constants + stocks
    if draw(st.booleans()):
        ys = [number(draw, 0, 3) for _ in range(3)]
        equations.append(f"table(\n\t[(0,0)-(10,3)],(0,{ys[0]}),(5,{ys[1]}),(10,{ys[2]}))\n\t~\tDmnl\n"
                         "\t~\tAssumed (generated).\n\t|")
        equations.append(f"looked = table({draw(st.sampled_from(names))})\n\t~\tDmnl\n\t~\tA lookup.\n\t|")
        names = names + ["looked"]
    for i in range(draw(st.integers(0, 2))):
        value = draw(expressions(names))
        if draw(st.booleans()):  # its initial value while initial values are computed
            value = f"ACTIVE INITIAL({value}, {draw(expressions([n for n in names if not n.startswith('Stock')]))})"
        equations.append(f"aux {i} = {value}\n\t~\tDmnl\n\t~\tAn auxiliary.\n\t|")
        names = names + [f"aux {i}"]
    for stock in stocks:
        inflow, outflow = f"{stock} inflow", f"{stock} outflow"
        equations.append(f"{stock} = INTEG({inflow} - {outflow}, {number(draw, 0, 5)})\n\t~\tDmnl\n\t~\tA stock.\n\t|")
        equations.append(f"{inflow} = MIN(MAX({draw(expressions(names))}, -10), 10)\n\t~\tDmnl/Year\n\t~\tIn.\n\t|")
        equations.append(f"{outflow} = {stock} * {number(draw, 0, 0.5)}\n\t~\tDmnl/Year\n\t~\tOut.\n\t|")
    step = draw(st.sampled_from(["0.25", "0.5", "1"]))
    control = (f"INITIAL TIME = 0 ~ Year ~ Start. |\nFINAL TIME = {draw(st.integers(2, 12))} ~ Year ~ End. |\n"
               f"TIME STEP = {step} ~ Year ~ Step. |\nSAVEPER = TIME STEP ~ Year ~ Save. |\n")
    return "{UTF-8}\n" + "\n\n".join(equations) + "\n\n" + control


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` damaged the ways a hand edit or a bad copy damages a file."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "bytes", "truncate"]))
        if kind == "delete" and text:
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 8)):]
        elif kind == "duplicate":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
        elif kind == "swap":
            found = sorted(set(re.findall(r"(c\d|Stock \d|aux \d|looked|table)", text)))
            if len(found) >= 2:
                a, b = draw(st.sampled_from(found)), draw(st.sampled_from(found))
                text = text.replace(a, "\0").replace(b, a).replace("\0", b)
        elif kind == "bytes":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(["\x00", "\ufffd", "\x1b[31m", '"', "|", "~", "(", "[", "\\",
                                                      '"""', "\udcff"])) + text[at:]
        elif kind == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
    return text


def write(folder: Path, text: str, suffix: str = ".mdl") -> Path:
    path = folder / f"g{next(_serial)}{suffix}"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


def assert_one_clean_ending(status: int, err: str, out: str = "") -> None:
    assert status in (0, 1, 2), err
    assert "Traceback" not in err + out, err
    assert "internal error" not in err, err
    if status == 2:  # unusable input: a line says what and where
        assert err.strip(), out


# properties -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUDGET)
def test_valid_generated_models_give_the_same_numbers_in_both_engines(tmp_path, name):
    from sdloop.engines.numpy_engine import compare_frames, engine_or_reasons
    from sdloop.engines.pysd_model import Model

    @budget(name, 0.5)
    @given(models())
    def check(text):
        path = write(tmp_path, text)
        reference = Model(path).run()
        engine, reasons = engine_or_reasons(path)
        assert engine is not None, reasons
        ours = engine.run_frame()
        assert np.isfinite(reference.to_numpy(dtype=float)).all()
        assert compare_frames(ours, reference) <= 1e-9, text

    check()


@pytest.mark.slow
def test_valid_generated_models_give_the_same_numbers_in_the_compiled_engine(tmp_path):
    """The same grammar through the C kernel (one compiled kernel per model: a quarter of the
    ``ci`` budget), against PySD at 1e-9."""
    from sdloop.engines.cbuild import CompilerUnavailable, require_prerequisites
    from sdloop.engines.compiled import CompiledEngine
    from sdloop.engines.numpy_engine import compare_frames
    from sdloop.engines.pysd_model import Model

    try:
        require_prerequisites()
    except CompilerUnavailable as exc:
        pytest.skip(str(exc))

    @budget("ci", 0.25)
    @given(models())
    def check(text):
        path = write(tmp_path, text)
        assert compare_frames(CompiledEngine(path).run_frame(), Model(path).run()) <= 1e-9, text

    check()


@pytest.mark.parametrize("name", BUDGET)
def test_damaged_models_end_cleanly_and_keep_earlier_results(tmp_path, capsys, name):
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("time,x\n0,1\n")

    @budget(name)
    @given(models().flatmap(mutated))
    def check(text):
        path = write(tmp_path, text)
        for command in (["check", str(path)], ["simulate", str(path), "--out", str(earlier)]):
            before = earlier.read_bytes()
            status = main(command)
            captured = capsys.readouterr()
            assert_one_clean_ending(status, captured.err, captured.out)
            if status != 0:
                assert earlier.read_bytes() == before
        earlier.write_text("time,x\n0,1\n")

    check()


TOML_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr).map(lambda v: {"nan": "nan", "inf": "inf",
                                                                            "-inf": "-inf"}.get(v, v)),
    st.integers(-10**400, 10**400).map(str),
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["true", "[1, 2]", "{ a = 1 }", "", "1979-05-27", "0x10"]),
)
TOML_KEYS = st.sampled_from(['"Capacity"', '"Lifetime"', '"Capacty"', '"Outflow"', '"Stock"', "Capacity",
                             '"TIME STEP"', '"FINAL TIME"', '"a.b"', '""'])


@pytest.mark.parametrize("name", BUDGET)
def test_generated_case_files_end_cleanly(tmp_path, capsys, name):
    @budget(name, 2)
    @given(st.lists(st.tuples(TOML_KEYS, TOML_VALUES), max_size=4), st.sampled_from(["[parameters]\n", "",
                                                                                     "[parameters.x]\n"]))
    def check(pairs, header):
        case = write(tmp_path, 'description = "generated"\n' + header + "".join(f"{k} = {v}\n" for k, v in pairs),
                     ".toml")
        status = main(["simulate", str(GOOD), "--case", str(case), "--out", str(tmp_path / "o.csv")])
        captured = capsys.readouterr()
        assert_one_clean_ending(status, captured.err, captured.out)

    check()


OPTION_TEXT = st.one_of(st.integers(-2**70, 2**70).map(str), st.floats().map(repr),
                        st.text(max_size=6), st.sampled_from(["", ",", "a,,b", "nev,nev", "tcp://", "inf"]))


@pytest.mark.parametrize("name", BUDGET)
def test_generated_option_values_are_accepted_or_refused_in_one_line(tmp_path, capsys, name):
    from sdloop.cli.main import build_parser

    options = {"simulate": ["--final-time", "--threads", "--columns", "--set"],
               "ensemble": ["--seed", "--samples", "--chunk", "--workers", "--sobol", "--cases", "--scheduler"]}

    @budget(name, 3)
    @given(st.sampled_from(sorted(options)), st.data())
    def check(command, data):
        option = data.draw(st.sampled_from(options[command]))
        value = data.draw(OPTION_TEXT)
        if value.startswith("-"):
            value = " " + value  # as a value, not an option (argparse's rule)
        try:
            build_parser().parse_args([command, "model.mdl", option, value])
        except SystemExit as exc:
            err = capsys.readouterr().err
            assert exc.code == 2 and "Traceback" not in err
            assert err.strip().splitlines()[-1].startswith("sdloop "), err

    check()
