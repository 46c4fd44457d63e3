"""Models as third-party Vensim and Stella users write them, through every command: what used to
give a false unit error, a traceback, a message without a line, or a diagram with inputs the
modeller never wrote (regressions of issue #9; the corpus models are in tests/fixtures/corpus)."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest

from conftest import FIXTURES
from sdloop.cli.main import main

CORPUS = FIXTURES / "corpus"
CONTROL = """INITIAL TIME = 0 ~ Month ~ |
FINAL TIME = 10 ~ Month ~ |
TIME STEP = 0.25 ~ Month ~ |
SAVEPER = TIME STEP ~ Month ~ |
"""


def write(tmp_path, text: str, name: str = "model.mdl"):
    path = tmp_path / name
    path.write_text("{UTF-8}\n" + text + CONTROL if name.endswith(".mdl") else text)
    return path


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if ": error: " in line]


def test_a_ramp_with_a_slope_of_one_has_the_slope_s_units(tmp_path, capsys):
    """RAMP(1, 2, 8) is a slope of 1 Widget/Month/Month times a time: Widgets/Month. sympy
    dropped a coefficient of exactly 1 and the ramp took Time's units; a written Time - 2
    still has them."""
    ramp = write(tmp_path, "growth = RAMP(1, 2, 8) ~ Widgets/Month ~ Assumed. |\n"
                           "level = INTEG(growth, 0) ~ Widgets ~ Assumed. |\n")
    assert main(["check", str(ramp)]) == 0 and errors(capsys) == []
    written = write(tmp_path, "growth = MIN(Time, 8) - 2 ~ Widgets/Month ~ Assumed. |\n"
                              "level = INTEG(growth, 0) ~ Widgets ~ Assumed. |\n", "written.mdl")
    assert main(["check", str(written)]) == 1
    assert any("growth: expected Widgets/Month, found Month" in e for e in errors(capsys))


def test_a_forecast_horizon_written_as_a_number_is_a_time(tmp_path, capsys):
    model = write(tmp_path, "demand = 10 + STEP(2, 3) ~ Units/Month ~ Assumed. |\n"
                            "averaging time = 4 ~ Month ~ Assumed. |\n"
                            "forecast = FORECAST(demand, averaging time, 8) ~ Units/Month ~ Assumed. |\n")
    assert main(["check", str(model)]) == 0 and errors(capsys) == []
    wrong = write(tmp_path, "demand = 10 + STEP(2, 3) ~ Units/Month ~ Assumed. |\n"
                            "averaging time = 4 ~ Month ~ Assumed. |\n"
                            "forecast = FORECAST(demand, averaging time, 8) ~ Units ~ Assumed. |\n", "wrong.mdl")
    assert main(["check", str(wrong)]) == 1 and errors(capsys)  # the output's own units still count


@pytest.mark.parametrize("name", ["model.mdl", "sir.xmile"])
def test_an_infinite_value_is_unusable_input_for_every_command(tmp_path, capsys, name):
    """`rate = inf` (Vensim) or INF (XMILE), which PySD reads as an undefined name: exit 2 from
    `check` as from `simulate` and `loops`, as for an infinite number (1e999)."""
    if name.endswith(".mdl"):
        model, where = write(tmp_path, "rate = inf ~ 1/Month ~ Assumed. |\n"
                                       "level = INTEG(rate, 1) ~ Dmnl ~ Assumed. |\n"), ":2: rate: 'inf'"
    else:
        text = (FIXTURES / "sir.xmile").read_text()
        model = write(tmp_path, text.replace("<eqn>6</eqn>", "<eqn>INF</eqn>", 1), name)
        where = ":44: contact rate: 'INF'"
    for command in ("check", "simulate", "loops"):
        assert main([command, str(model)]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{model}{where} is not a number PySD reads" in err[0], (command, err)


def test_the_diagram_draws_time_and_time_step_only_where_an_equation_names_them(tmp_path):
    """STEP, PULSE and RAMP read Time and TIME STEP in their written-out form; the modeller wrote
    neither, so no arrow comes from them (``adjustment time`` and ``TIME STEP`` hold no ``Time``)."""
    from sdloop.structure.build import build_structure
    from sdloop.structure.stockflow import stock_flow

    model = write(tmp_path, "Inventory = INTEG(production - shipments, 100) ~ Widgets ~ Assumed. |\n"
                            "production = 10 + STEP(5, 3) + PULSE(4, 2) * 3 ~ Widgets/Month ~ Assumed. |\n"
                            "shipments = Inventory / adjustment time + RAMP(1, 2, 8) ~ Widgets/Month ~ Assumed. |\n"
                            "adjustment time = 4 ~ Month ~ Assumed. |\n"
                            "clock watcher = Time + TIME STEP ~ Month ~ Assumed. |\n")
    sf = stock_flow(build_structure(model))
    sources = {(s, t) for s, t in sf.links if s in ("Time", "TIME STEP")}
    assert sources == {("Time", "clock watcher"), ("TIME STEP", "clock watcher")}
    fishery = stock_flow(build_structure(CORPUS / "stella_fishery.xmile"))  # XMILE: PULSE reads DT
    assert {(s, t) for s, t in fishery.links if s in ("Time", "TIME STEP")} == {("Time", "seasonal")}


MACRO = """:MACRO: EXPSMOOTH(input, avg time)
EXPSMOOTH = {body}
	~	input
	~	A macro.
	|
:END OF MACRO:
region: north, south ~ ~ |
sales[region] = 100, 80 ~ Widgets/Month ~ Assumed. |
smoothed sales[region] = EXPSMOOTH(sales[region], 3) ~ Widgets/Month ~ Assumed. |
"""


@pytest.mark.parametrize("body, line, variable, words", [
    ("INTEG(MAX(input - EXPSMOOTH, 0) / avg time, 0)", 10, "smoothed sales", "only 0-dimensional arrays"),
    ("DELAY1(input, avg time)", 3, "EXPSMOOTH", "has no TIME STEP"),
])
def test_a_failure_inside_a_macro_names_the_line(tmp_path, capsys, body, line, variable, words):
    """PySD fails inside a macro called with an array (a run) and on DELAY1 inside any macro (a
    load): the line is the calling equation or the macro's own; the numpy engine runs both."""
    model = write(tmp_path, MACRO.format(body=body))
    assert main(["simulate", str(model), "--engine", "pysd"]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sdloop: error: {model}:{line}: {variable}: "), err
    assert words in err[0] and "macro EXPSMOOTH" in err[0] and "--engine numpy" in err[0], err
    assert main(["simulate", str(model), "--engine", "numpy"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_delays_inside_a_macro_run_in_the_numpy_engine_as_pysd_runs_them_inlined(tmp_path):
    from sdloop.engines.numpy_engine import compare_frames, engine_or_reasons
    from sdloop.engines.pysd_model import Model

    macro = write(tmp_path, MACRO.format(body="DELAY3(input, avg time)"))
    inlined = write(tmp_path, "region: north, south ~ ~ |\n"
                              "sales[region] = 100, 80 ~ Widgets/Month ~ Assumed. |\n"
                              "smoothed sales[region] = DELAY3(sales[region], 3) ~ Widgets/Month ~ Assumed. |\n",
                    "inlined.mdl")
    engine, reasons = engine_or_reasons(macro)
    assert engine is not None, reasons
    columns = ["smoothed sales[north]", "smoothed sales[south]"]
    assert compare_frames(engine.run_frame()[columns], Model(inlined).run()[columns]) <= 1e-9


def test_pysd_s_load_failures_name_the_equation_and_the_data_file(tmp_path, capsys):
    """A failure while PySD computes initial values names the equation it was computing; a data
    file PySD cannot read as written names the variable and the file beside the model (not the
    translation cache)."""
    data = (CORPUS / "data_xls.mdl").read_text().replace("'params', 'A2'", "'params', 'A2*'")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "history.xlsx").write_bytes((CORPUS / "data" / "history.xlsx").read_bytes())
    (tmp_path / "data_xls.mdl").write_text(data)
    assert main(["simulate", str(tmp_path / "data_xls.mdl"), "--engine", "pysd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sdloop: error: {tmp_path / 'data_xls.mdl'}:20: growth rate: PySD could not read the data "
                          f"({tmp_path / 'data' / 'history.xlsx'}, A2"), err
    xmile = (CORPUS / "stella_fishery.xmile").read_text().replace("(Fleet * max_catch_per_boat)",
                                                                  "(Fleet * SUM(max_catch_per_boat))")
    path = write(tmp_path, xmile, "fishery.xmile")
    assert main(["simulate", str(path), "--engine", "pysd"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.match(rf"sdloop: error: {re.escape(str(path))}:\d+: profit signal: PySD could not load the model: ", err), err


def test_an_xmile_array_function_of_a_whole_array_is_refused(tmp_path, capsys):
    """PySD reads SUM(catch) as a sum over no dimension: the scalar stock it feeds becomes an
    array. sdloop refuses it with the line and what to write instead."""
    xmile = (CORPUS / "stella_fishery.xmile").read_text().replace("SUM(catch[Zone!])", "SUM(catch)")
    path = write(tmp_path, xmile, "fishery.xmile")
    for command in ("simulate", "check", "loops"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "profit signal: SUM(catch) names a whole array without its dimension" in err[0], err


def test_pysd_s_lookup_extrapolation_notes_stay_quiet(capsys):
    """PySD warns "_hardcodedlookup_<name>\\nextrapolating data above ..." where Vensim holds the
    end value: sdloop printed the Python name alone as a warning."""
    assert main(["simulate", str(CORPUS / "third_party_supply_chain.mdl"), "--engine", "pysd"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["third_party_stochastic.mdl", "data_xls.mdl"])
def test_plain_loops_signs_links_along_a_run_with_pysd_s_draws_and_data(name, capsys):
    """RANDOM draws and data off or on the loops: plain `loops` runs the model with PySD's values of
    what sdloop does not write out (as `loops --dominance` does) instead of signing without a run;
    a data lookup on a loop leaves that loop's sign "depends" (it crashed)."""
    from sdloop.analysis.loop_analysis import analyse_model

    analysis = analyse_model(CORPUS / name)
    assert analysis.run is not None and "a run that takes its values from PySD" in analysis.note
    assert main(["loops", str(CORPUS / name)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err


def test_a_mapping_between_two_subranges_of_one_range_pairs_elements_by_position():
    """``Earlier: c1, c2, c3 -> Later`` with ``Later: c2, c3, c4``: in ``aging in[Later,Sex] =
    aging out[Earlier,Sex]`` c2 reads c1 (as PySD does); the two share c2 and c3, and the engine
    took the same element (0.74 off PySD)."""
    from sdloop.structure.build import build_structure

    s = build_structure(CORPUS / "third_party_aging_chain.mdl")
    for later, earlier in (("c2", "c1"), ("c3", "c2"), ("c4", "c3")):
        assert s[f"aging in[{later},male]"].equation == s[f"aging out[{earlier},male]"].symbol


def test_a_data_variable_with_a_keyword_is_found_at_its_line(capsys):
    """``observed price:INTERPOLATE::= GET DIRECT DATA(...)`` was read as a subscript range, so
    messages named line None; PySD's note on a DELAY N order it reduced stays quiet."""
    from sdloop.lang.equations import read_text, split_equations

    path = CORPUS / "third_party_market_data.mdl"
    found = {eq.name: (eq.line, eq.range) for eq in split_equations(path, read_text(path))}
    assert found["observed price"] == (2, False) and found["observed volume"] == (8, False)
    assert main(["loops", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}:2: observed price: GET DATA is run by PySD only" in err and "warning" not in err, err


def test_a_variable_written_with_na_is_nan_in_every_engine_as_in_pysd(tmp_path, capsys):
    """``guarded = IF THEN ELSE(missing = :NA:, 0, missing)``: PySD's :NA: is NaN (never equal to
    itself), so PySD gives NaN, and the PySD engine accepts it; the numpy engine called the same
    run a failure, and loops refused the model."""
    import numpy as np

    from sdloop.engines.numpy_engine import engine_or_reasons
    from sdloop.engines.pysd_model import Model

    model = write(tmp_path, "missing = :NA: ~ Units ~ Not available. |\n"
                            "guarded = IF THEN ELSE(missing = :NA:, 0, missing) ~ Units ~ Assumed. |\n"
                            "level = INTEG(1 - level / two months, 0) ~ Dmnl ~ Assumed. |\n"
                            "two months = 2 ~ Month ~ Assumed. |\n")
    reference = Model(model).run()
    engine, reasons = engine_or_reasons(model)
    assert engine is not None, reasons
    ours = engine.run_frame()
    assert np.isnan(reference["guarded"]).all() and np.isnan(ours["guarded"]).all()
    assert np.allclose(ours["level"], reference["level"], rtol=1e-9)
    assert main(["simulate", str(model), "--engine", "numpy"]) == 0
    assert main(["loops", "--dominance", str(model)]) == 0


def test_an_xmile_graphical_function_runs_on_its_listed_points(tmp_path):
    """A <gf> with <xpts> 0, 0.5, 1, 2 beside <xscale min="0" max="2"/> (as Vensim's and Stella's
    exports write one with uneven points): sdloop interpolates on the listed points in every
    engine; plain PySD spaced four points evenly over the scale (0, 2/3, 4/3, 2)."""
    import numpy as np
    import pysd

    from sdloop.engines.numpy_engine import engine_or_reasons
    from sdloop.engines.pysd_model import Model

    model = tmp_path / "vensim_export.xmile"
    shutil.copy(CORPUS / "vensim_export.xmile", model)
    ours = Model(model).run()
    ratio, price = ours["inventory ratio[north]"].to_numpy(), ours["price[north]"].to_numpy()
    assert ratio.min() < 2 / 3 < ratio.max()  # where listed and evenly spaced points differ
    assert np.allclose(price, np.interp(ratio, [0, 0.5, 1, 2], [1.8, 1.3, 1, 0.8]), rtol=1e-12)
    engine, reasons = engine_or_reasons(model)
    assert engine is not None, reasons
    assert np.allclose(engine.run_frame()["price[north]"].to_numpy(), price, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = pysd.read_xmile(str(model)).run()
    spaced = np.interp(plain["inventory ratio[north]"].to_numpy(), [0, 2 / 3, 4 / 3, 2], [1.8, 1.3, 1, 0.8])
    assert np.allclose(plain["price[north]"].to_numpy(), spaced, rtol=1e-6)  # why sdloop differs from it


def test_an_xmile_macro_is_refused_with_one_line(capsys):
    """PySD's XMILE reader has no macros (it fails on the call as an unknown function)."""
    model = CORPUS / "vensim_macro.xmile"
    _refused_in_one_line(capsys, model, f"{model}:25: TWICE: XMILE macros (<macro>) are not supported by PySD's "
                         "XMILE reader (the same macro in a Vensim .mdl runs)")


def test_macros_after_the_equations_one_runs_two_are_named_with_a_line(capsys):
    """PySD reads one macro after the model's equations (macro_trailing.mdl, in the corpus) but
    not two: its grammar takes the model up to the last :MACRO:, and its error had no line. The
    first such macro is named with its line and what to do."""
    path = CORPUS / "errors" / "trailing_macros.mdl"
    _refused_in_one_line(capsys, path, f"{path}:91: DOUBLE: PySD cannot read a macro after the model's equations "
                         "when another macro follows it; move the macros (:MACRO: ... :END OF MACRO:) before the "
                         "equations")


def _refused_in_one_line(capsys, path, ending: str) -> None:
    """simulate, check and loops each exit 2 with one line ending with ``ending``."""
    for command in ("simulate", "check", "loops"):
        assert main([command, str(path)]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(ending), (command, err)
