"""The construct corpus (tests/fixtures/corpus): every model through plain PySD, sdloop's PySD
runner, the numpy engine, ``check`` and ``loops``.

- sdloop simulate (PySD engine) gives plain PySD's numbers (data files read next to the model);
- the numpy engine runs every non-data model natively with PySD's numbers to 1e-9, or falls
  back naming the construct (``FALLS_BACK``);
- ``check`` and ``loops`` exit 0, 1 or 2 and never print a traceback;
- models PySD itself cannot run, and broken files (``errors/``), exit 2 with one line
  ``FILE:LINE: VARIABLE: message`` from ``simulate``, ``check`` and ``loops``.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import pytest

from conftest import FIXTURES
from sdloop.cli.main import main
from sdloop.engines.numpy_engine import compare_frames, engine_or_reasons
from sdloop.engines.pysd_model import Model
from sdloop.engines.pysd_runtime import seeded_random
from sdloop.structure.build import build_structure

CORPUS = FIXTURES / "corpus"
MODELS = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".mdl", ".xmile"))
# Models PySD cannot run: sdloop says so in one line naming the line and the construct.
PYSD_CANNOT = {
    "lookup_extrapolate.mdl": (3, "LOOKUP"),
    "lookup_directions.mdl": (12, "LOOKUP FORWARD"),
    "npv.mdl": (14, "NPV"),
    "stella_conveyor.xmile": (18, "conveyors"),
    "stella_module.xmile": (14, "modules"),  # PySD runs it, but leaves the module's input at 0
    "macro_outputs.mdl": (35, "several outputs"),
    "vensim_macro.xmile": (25, "macros"),
}
# Models whose graphical functions list their points (<xpts>) beside a scale (<xscale>): plain
# PySD spaces the points evenly over the scale, sdloop reads the listed ones (as the standard
# and the tools that write both do); plain PySD is run on the file without those scales.
LISTED_POINTS = {"vensim_export.xmile"}
# Models the numpy engine does not compile, and the construct its fallback line names.
FALLS_BACK = {
    "vector_functions.mdl": "VECTOR SELECT",
    "data_files.mdl": "GET DATA",
    "allocate_priority.mdl": "ALLOCATE BY PRIORITY",
    "random_seeded.mdl": "RANDOM UNIFORM",
    "subscripts_2d.mdl": "VECTOR SORT ORDER",
    "data_arrays.mdl": "GET",
    "opaque_loops.mdl": "ALLOCATE BY PRIORITY",
    "third_party_stochastic.mdl": "RANDOM NORMAL",
    "data_xls.mdl": "GET DATA",
    "third_party_market_data.mdl": "GET DATA",
    "invert_matrix.mdl": "INVERT MATRIX",
}
RUNNABLE = [m for m in MODELS if m not in PYSD_CANNOT]
ERRORS = sorted(p.name for p in (CORPUS / "errors").iterdir())
TOLERANCE = 1e-9


def plain_pysd(name: str, tmp_path):
    """The model run by PySD itself, translated in a copy of the corpus folder."""
    import pysd

    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("errors"))
    if name in LISTED_POINTS:
        text = (folder / name).read_text()
        (folder / name).write_text(re.sub(r"<xscale[^>]*/>(\s*<yscale[^>]*/>\s*<xpts>)", r"\1", text))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = pysd.read_vensim if name.endswith(".mdl") else pysd.read_xmile
        with np.errstate(all="ignore"), seeded_random():  # RANDOM functions: sdloop's seed
            return reader(str(folder / name)).run()


@pytest.mark.parametrize("name", RUNNABLE)
def test_sdloop_runs_what_pysd_runs(name, tmp_path):
    reference = plain_pysd(name, tmp_path)
    ours = Model(CORPUS / name).run()
    assert list(ours.index) == pytest.approx(list(reference.index))
    assert set(reference.columns) <= set(ours.columns)
    assert compare_frames(ours[reference.columns], reference) == 0.0


@pytest.mark.parametrize("name", RUNNABLE)
def test_numpy_engine_matches_pysd_or_names_the_construct(name):
    engine, reasons = engine_or_reasons(CORPUS / name)
    if name in FALLS_BACK:
        assert engine is None and any(FALLS_BACK[name] in r for r in reasons), reasons
        assert len(reasons) == len(set(reasons)), reasons  # not once per array element
        assert all(re.match(rf"{re.escape(str(CORPUS / name))}:\d+: ", r) for r in reasons), reasons
        return
    assert engine is not None, reasons
    reference = Model(CORPUS / name).run()
    ours = engine.run_frame()
    assert compare_frames(ours, reference) <= TOLERANCE
    assert set(ours.columns) <= set(reference.columns)


@pytest.mark.parametrize("name", MODELS)
def test_check_and_loops_never_crash(name, capsys):
    """Every model PySD runs is dimensionally consistent, so `check` finds no error in it (a
    false unit error, e.g. from TREND with a literal time, a macro's units written in its
    parameters' names or a SMOOTH inside an expression, fails here)."""
    for command in ("check", "loops"):
        status = main([command, str(CORPUS / name)])
        captured = capsys.readouterr()
        assert status in (0, 1, 2), (command, captured.err)
        assert "Traceback" not in captured.err + captured.out
        if command == "check" and name not in PYSD_CANNOT:
            assert status == 0, captured.out
    if name not in PYSD_CANNOT:  # constructs only PySD runs too: links through them get a sign or none
        assert main(["loops", str(CORPUS / name)]) == 0


def test_loops_pass_through_constructs_only_pysd_runs(capsys, tmp_path):
    """opaque_loops.mdl: ALLOCATE BY PRIORITY, RANDOM UNIFORM and VECTOR SORT ORDER, which
    sdloop does not write out, on feedback loops. A link along an input the construct never
    falls with (supply, a draw's upper bound) is "+", one along a priority has no sign, and so
    has every loop through it; loops exist whatever their signs."""
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.analysis.loops import NO_SIGN

    analysis = analyse_model(CORPUS / "opaque_loops.mdl")
    links = {k: link.polarity for k, link in analysis.links.items()}
    assert links["supply available", "shipments[Boston]"] == "+"
    assert links["Inventory", "noise"] == "+"
    assert links["priority[Boston]", "shipments[Boston]"] == NO_SIGN
    assert links["priority[Boston]", "shipments[Dayton]"] == NO_SIGN  # ALLOCATE reads the whole array
    assert links["Backlog[Dayton]", "rank[Boston]"] == NO_SIGN
    loops = {loop.variables: loop.polarity for loop in analysis.loops}
    assert loops[("Inventory", "noise", "production")] == "R"
    assert loops[("Inventory", "supply available", "shipments[Boston]", "total shipped")] == "B"
    assert loops[("Backlog[Boston]", "priority[Boston]", "shipments[Boston]")] == NO_SIGN
    assert "RANDOM UNIFORM is run by PySD only" in analysis.note
    assert main(["check", str(CORPUS / "opaque_loops.mdl")]) == 0
    out = capsys.readouterr().out
    assert "warning: shipments: ALLOCATE BY PRIORITY is run by PySD only" in out and " error: " not in out
    assert main(["loops", str(CORPUS / "opaque_loops.mdl"), "--out", str(tmp_path / "out")]) == 0
    listed = json.loads((tmp_path / "out" / "loops.json").read_text())["loops"]
    assert {loop["polarity"] for loop in listed} == {"B", "R", NO_SIGN}
    assert (tmp_path / "out" / "causal_loop_diagram.png").stat().st_size > 0


@pytest.mark.parametrize("name", sorted(PYSD_CANNOT))
def test_models_pysd_cannot_run_give_one_line(name, capsys):
    line, construct = PYSD_CANNOT[name]
    for command in ("simulate", "check", "loops"):
        status = main([command, str(CORPUS / name)])
        assert status == 2 or command == "check" and status == 1, command  # check: a finding
        captured = capsys.readouterr()
        lines = (captured.err + captured.out).strip().splitlines()
        assert any(f"{CORPUS / name}:{line}:" in e and construct in e for e in lines), (command, lines)


@pytest.mark.parametrize("name", ERRORS)
def test_broken_files_exit_2_with_one_line(name, capsys):
    path = CORPUS / "errors" / name
    for command in ("simulate", "check", "loops"):
        assert main([command, str(path)]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and "Traceback" not in err[0], (command, err)


@pytest.mark.parametrize("name, line, variable, construct", [
    ("sized_dimension.xmile", 14, "Market", "a dimension given by its size"),
    ("stock_elements.xmile", 20, "Customers", "a stock with one initial value per <element>"),
])
def test_stella_forms_pysd_cannot_read_are_named(name, line, variable, construct, capsys):
    """Stella writes numbered dimensions as <dim size="3"/> and arrayed stocks with one
    initial value per element; PySD fails on both with a bare IndexError/AttributeError."""
    path = CORPUS / "errors" / name
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:{line}: {variable}: PySD cannot read {construct}"), err


def test_an_xmile_equation_pysd_cannot_parse_is_named_with_its_line(capsys):
    path = CORPUS / "errors" / "bad_equation.xmile"
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:21: Heat Loss to Room: cannot parse the equation near ' / *"), err


def test_structure_writes_arrays_out_element_by_element():
    s = build_structure(CORPUS / "subscripts.mdl")
    assert s.ranges["coastal"] == ("north", "east")
    pop = s["population[south]"]
    assert pop.kind == "stock" and pop.array == "population" and pop.coords == ("south",)
    assert {v.name for v in s.variables.values() if v.array == "bonus"} == {f"bonus[{r}]" for r in s.ranges["region"]}
    assert float(s["bonus[north]"].equation) == 0.01 and float(s["bonus[south]"].equation) == 0
    assert float(s["share[east,farm]"].equation) == 0.9
    assert s["mapped[factory]"].equation == 10 * s["weights[s2]"].symbol  # through the mapping
    assert float(s["position[west]"].equation) == 4
    assert s.inputs("total population") == tuple(sorted(f"population[{r}]" for r in s.ranges["region"]))


def test_structure_counts_elements_and_reads_game_as_its_expression():
    s = build_structure(CORPUS / "subscripts_2d.mdl")
    assert s["number of products"].equation == 4  # ELMCOUNT(Product), Product: (p1-p4)
    game = build_structure(CORPUS / "logic_game.mdl")
    assert game["lever"].equation == 0.5 * game["policy on"].symbol  # GAME(x) when nobody plays: x


def test_subscripted_constants_are_set_by_element_or_whole(tmp_path):
    model = Model(CORPUS / "subscripts.mdl")
    assert model.defaults["growth[south]"] == 0.03 and "growth" in model.constants
    base = model.run(columns=["population[south]", "population[north]"])
    one = model.run({"growth[south]": 0.1}, columns=["population[south]", "population[north]"])
    assert one["population[south]"].iloc[-1] > base["population[south]"].iloc[-1]
    assert one["population[north]"].iloc[-1] == base["population[north]"].iloc[-1]
    whole = model.run({"growth": 0}, columns=["population[west]"])
    assert whole["population[west]"].iloc[-1] == pytest.approx(40)
    engine, _ = engine_or_reasons(CORPUS / "subscripts.mdl")
    ours = engine.run_frame({"growth[south]": 0.1}, columns=["population[south]"])
    assert compare_frames(ours, one[["population[south]"]]) <= TOLERANCE


def test_data_files_are_read_next_to_the_model_and_key_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "m"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("errors"))
    first = Model(folder / "data_files.mdl").run(columns=["k"])
    (folder / "data" / "constants.csv").write_text("name,value\na,4\n")
    second = Model(folder / "data_files.mdl").run(columns=["k"])
    assert first["k"].iloc[0] == 3 and second["k"].iloc[0] == 4
    (folder / "data" / "constants.csv").unlink()
    assert main(["simulate", str(folder / "data_files.mdl")]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in RUNNABLE if m.endswith(".mdl")])
def test_sketch_keeps_the_equations_and_pysd_runs_the_sketched_file_the_same(name, tmp_path):
    source = CORPUS / name
    target = tmp_path / "corpus" / name
    reference = plain_pysd(name, tmp_path)  # copies the corpus (data files) into tmp_path/corpus
    assert main(["sketch", str(source), "--out", str(target)]) == 0
    original, sketched = source.read_bytes(), target.read_bytes()
    marker = re.search(rb"\\{2,3}---///", original)  # Vensim's sketch marker (two or three backslashes)
    equations = original[:marker.start()] if marker else original.rstrip()
    assert sketched.startswith(equations)  # byte for byte: BOM, CRLF, tabs kept
    import pysd

    with warnings.catch_warnings(), np.errstate(all="ignore"), seeded_random():
        warnings.simplefilter("ignore")
        after = pysd.read_vensim(str(target)).run()
    assert list(after.columns) == list(reference.columns)
    assert compare_frames(after, reference) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNNABLE)
def test_diagram_draws_every_runnable_model(name, tmp_path):
    assert main(["diagram", str(CORPUS / name), "--out", str(tmp_path / "d")]) == 0
    # one file pair, or one per sketch view (d-VIEW.pdf/.png) for a model saved with several views
    pdfs = sorted(tmp_path.glob("d*.pdf"))
    assert pdfs and all(p.stat().st_size > 0 and p.with_suffix(".png").stat().st_size > 0 for p in pdfs)


@pytest.mark.parametrize("name", ["data_files.mdl", "random_seeded.mdl", "data_arrays.mdl"])
def test_loop_dominance_reads_data_and_draws_from_a_pysd_run(name, capsys):
    """Constructs sdloop does not write out (GET DATA/CONSTANTS/LOOKUPS, RANDOM draws) off the
    feedback loops: `loops --dominance` takes their values from a PySD run, and the Euler run
    it scores then reproduces PySD's trajectory (it refused these models before)."""
    from sdloop.analysis.loop_analysis import exogenous_series
    from sdloop.engines.euler import Evaluator

    structure = build_structure(CORPUS / name)
    run = Evaluator(structure, exogenous_series(structure)).run()
    reference = Model(CORPUS / name).run(saveper=structure.control("time step"))
    own = [n for n in reference.columns if n in run.values and structure.variables[n].kind != "control"]
    assert any(structure.variables[n].kind == "stock" for n in own)
    assert compare_frames(run.frame(own).set_axis(reference.index), reference[own]) <= TOLERANCE
    assert main(["loops", "--dominance", str(CORPUS / name)]) == 0
    assert "Dominant loop" in capsys.readouterr().out


def test_loop_dominance_refuses_a_loop_through_a_construct_only_pysd_runs(capsys):
    path = CORPUS / "opaque_loops.mdl"
    assert main(["loops", "--dominance", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(rf"sdloop: error: {re.escape(str(path))}:\d+: \w+: [A-Z ]+ \(run by PySD only\) on the feedback "
                    r"loop \w+: loop dominance cannot score its links", err), err


ARRAYED_NON_NEGATIVE_FLOW = """<?xml version="1.0" encoding="utf-8"?>
<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">
	<header><name>aging</name><vendor>isee systems, inc.</vendor><product version="3.0">Stella Architect</product></header>
	<sim_specs method="Euler" time_units="Years"><start>0</start><stop>10</stop><dt>0.25</dt></sim_specs>
	<dimensions><dim name="Age"><elem name="young"/><elem name="old"/></dim></dimensions>
	<model>
		<variables>
			<stock name="Population">
				<dimensions><dim name="Age"/></dimensions>
				<eqn>100</eqn>
				<outflow>deaths</outflow>
				<units>people</units>
			</stock>
			<flow name="deaths">
				<dimensions><dim name="Age"/></dimensions>
				<eqn>Population*mortality</eqn>
				<non_negative/>
				<units>people/Years</units>
			</flow>
			<aux name="mortality">
				<dimensions><dim name="Age"/></dimensions>
				<element subscript="young"><eqn>0.01</eqn></element>
				<element subscript="old"><eqn>0.1</eqn></element>
				<units>1/Years</units>
			</aux>
		</variables>
	</model>
</xmile>
"""


def test_an_array_pysd_fails_on_is_named_and_the_numpy_engine_runs_it(tmp_path, capsys):
    """PySD translates an apply-to-all arrayed flow with <non_negative/> as float(array) and fails
    at the first step; sdloop names the variable, its line and what to try. The numpy engine runs
    it with PySD's numbers for the same model without the (here inactive) clipping."""
    model, plain = tmp_path / "aging.xmile", tmp_path / "plain.xmile"
    model.write_text(ARRAYED_NON_NEGATIVE_FLOW)
    plain.write_text(ARRAYED_NON_NEGATIVE_FLOW.replace("<non_negative/>", ""))
    assert main(["simulate", str(model), "--engine", "pysd"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sdloop: error: {model}:14: deaths: PySD failed during the run: ") and "--engine numpy" in err
    engine, reasons = engine_or_reasons(model)
    assert engine is not None, reasons
    assert compare_frames(engine.run_frame(), Model(plain).run()) <= TOLERANCE
