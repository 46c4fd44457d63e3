"""``sdloop sketch`` and ``sdloop diagram``: Vensim sketch records, files PySD still runs
the same, diagrams written, and the bundled models' sketches in sync with their equations."""

from __future__ import annotations

import argparse
import re
import shutil

import pytest

from analysis_helpers import FIXTURES
from conftest import MODELS
from sdloop.lang.sketch import read_sketch, split_sketch, with_sketch
from sdloop.structure.build import build_structure
from sdloop.structure.layout import layout
from sdloop.structure.stockflow import stock_flow

SKETCHED = ["sir.mdl", "goal_seeking.mdl", "builtins.mdl", "oscillator.mdl"]


def cli(*argv) -> int:
    from sdloop.cli.main import main

    return main([str(a) for a in argv])


def sketched(tmp_path, name: str):
    source = FIXTURES / name
    target = tmp_path / name
    shutil.copy(source, target)
    assert cli("sketch", target, "--in-place") == 0
    return source, target


def records_by_view(text: str) -> dict[str, list]:
    views: dict[str, list] = {}
    for record in read_sketch(text):
        views.setdefault(record.view, []).append(record)
    return views


def check_sketch(text: str, model) -> None:
    """The sketch is what Vensim reads: well-formed records PySD's grammar accepts, each
    variable once as its own record, arrows between records of their view, valves between
    the two ends of their pipe, each valve followed by its flow's name."""
    from pysd.translators.vensim import vensim_utils

    grammar = vensim_utils.Grammar.get("sketch")
    _, sketch, _ = split_sketch(text)
    assert sketch.count("\\\\\\---/// Sketch information") == len(records_by_view(text))
    for line in sketch.splitlines():
        grammar.parse(line)  # raises on a line PySD's sketch grammar cannot read
    own = [r.name for r in read_sketch(text) if r.type == 10 and int(r.fields[8]) % 2 == 1]
    sf = stock_flow(build_structure(model))
    drawn = sorted(n for n, kind in sf.kinds.items() if kind != "builtin")
    assert sorted(own) == drawn  # every variable once as its own record, nothing else
    for view, records in records_by_view(text).items():
        by_id = {r.id: r for r in records if r.type != 1}
        assert len(by_id) == len([r for r in records if r.type != 1])
        arrows = [r for r in records if r.type == 1]
        for arrow in arrows:
            assert int(arrow.fields[2]) in by_id and int(arrow.fields[3]) in by_id, (view, arrow)
        for valve in (r for r in records if r.type == 11):
            flow = by_id[valve.id + 1]
            assert flow.type == 10 and flow.fields[7] == "40" and sf.kinds[flow.name] == "flow"
            pipes = [a for a in arrows if int(a.fields[2]) == valve.id]
            assert sorted(a.fields[4] for a in pipes) == ["100", "4"]  # drains, fills
            (x, y), ends = valve.xy, [by_id[int(a.fields[3])].xy for a in pipes]
            assert min(e[0] for e in ends) <= x <= max(e[0] for e in ends)
            assert min(e[1] for e in ends) <= y <= max(e[1] for e in ends)
            pipe = sf.pipes[flow.name]
            for a in pipes:
                end = by_id[int(a.fields[3])]
                expected = pipe.target if a.fields[4] == "4" else pipe.source
                assert end.name == (expected if expected else "48")  # the stock, or a cloud


@pytest.mark.parametrize("name", SKETCHED)
def test_sketch_is_vensim_and_pysd_runs_the_file_the_same(tmp_path, name):
    import pysd

    source, target = sketched(tmp_path, name)
    text = target.read_text()
    assert text.startswith(source.read_text().split("\\\\\\---///")[0])  # equations byte for byte
    check_sketch(text, target)
    before = pysd.read_vensim(str(_copy(source, tmp_path))).run()
    after = pysd.read_vensim(str(target)).run()
    assert list(after.columns) == list(before.columns)
    assert (after.to_numpy() == before.to_numpy()).all()


def _copy(source, tmp_path):
    folder = tmp_path / "original"
    folder.mkdir(exist_ok=True)
    return shutil.copy(source, folder / source.name)


def test_an_old_sketch_is_replaced_and_settings_kept(tmp_path):
    model = tmp_path / "sir.mdl"
    equations = (FIXTURES / "sir.mdl").read_text()
    old = ("\\\\\\---/// Sketch information - do not modify anything except names\nV300  Do not put anything "
           "below this section - it will be ignored\n*View 1\n10,1,Gone,10,10,40,20,3,3,0,0,0,0,0,0\n///---\\\\\\\n")
    settings = ":L<%^E!@\n1:Current.vdf\n9:Current\n"
    model.write_bytes((equations + old + settings).replace("\n", "\r\n").encode())
    assert cli("sketch", model, "--in-place") == 0
    text = model.read_bytes().decode()
    before, sketch, after = split_sketch(text)
    assert before == equations.replace("\n", "\r\n") and after == settings.replace("\n", "\r\n")
    assert "Gone" not in sketch and "\r\n10,1,Susceptible," in sketch
    check_sketch(text, model)
    assert with_sketch(text, layout(stock_flow(build_structure(model)))) == text  # stable


def test_sketch_to_stdout_and_out(tmp_path, capsys):
    assert cli("sketch", FIXTURES / "goal_seeking.mdl") == 0
    printed = capsys.readouterr().out
    assert printed.startswith((FIXTURES / "goal_seeking.mdl").read_text())
    out = tmp_path / "sketched.mdl"
    assert cli("sketch", FIXTURES / "goal_seeking.mdl", "--out", out) == 0
    assert out.read_text() == printed
    assert "sketch of 5 variables in 1 view" in capsys.readouterr().err


def test_sketch_refuses_xmile_and_bad_files(tmp_path, capsys):
    assert cli("sketch", FIXTURES / "sir.xmile") == 2
    assert "writes Vensim sketches into .mdl files" in capsys.readouterr().err
    broken = tmp_path / "broken.mdl"
    broken.write_text((FIXTURES / "goal_seeking.mdl").read_text().replace("gap = goal - Level", "gap = goal - (Level"))
    assert cli("sketch", broken, "--in-place") == 2
    assert broken.read_text().count("---///") == 0  # nothing written


def test_views_follow_groups_and_shadow_other_views():
    views = layout(stock_flow(build_structure(MODELS / "policy_loop.mdl")))
    assert [v.name for v in views][:2] == ["Policy supply", "Innovation factors"]
    supply = views[0]
    shadows = {e.name for e in supply.elements if e.kind == "shadow"}
    assert "Policy Effort" in shadows and "Policy Effort" not in {e.name for e in supply.elements
                                                                  if e.kind != "shadow"}


@pytest.mark.parametrize("constants", [True, False])
def test_layout_overlaps_nothing(constants):
    for path in (MODELS / "policy_loop.mdl", MODELS / "sector_lifecycle.mdl", FIXTURES / "builtins.mdl"):
        for view in layout(stock_flow(build_structure(path)), constants=constants):
            boxes = [(e.x - e.w, e.y - e.h, e.x + e.w, e.y + e.h, e.name) for e in view.elements]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (view.name, a, b)


def test_diagram_writes_pdf_and_png(tmp_path, capsys):
    from PIL import Image

    assert cli("diagram", FIXTURES / "sir.xmile", "--out", tmp_path / "sir.png") == 0
    assert (tmp_path / "sir.pdf").stat().st_size > 0
    with Image.open(tmp_path / "sir.png") as image:
        width = image.size[0] / image.info["dpi"][0] * 25.4
    assert 175 < width < 190  # mm: the house style's double column
    model = tmp_path / "sir.mdl"
    shutil.copy(FIXTURES / "sir.mdl", model)
    shutil.copy(FIXTURES / "sir.loops.toml", tmp_path / "sir.loops.toml")
    assert cli("diagram", model, "--loops", "--out", tmp_path / "loops") == 0
    assert (tmp_path / "loops.png").exists()
    assert cli("diagram", model, "--view", "nowhere", "--out", tmp_path / "x") == 2
    assert "no view 'nowhere'; the model's views: View 1" in capsys.readouterr().err


def test_loops_view_holds_the_loop_variables(tmp_path):
    from sdloop.cli.diagram import _loops_view

    structure = build_structure(FIXTURES / "sir.mdl")
    view, highlight, labels = _loops_view(structure, stock_flow(structure), constants=False)
    assert {e.name for e in view.elements if e.kind in ("stock", "flow")} == {
        "Susceptible", "Infected", "infection", "recovery"}  # Recovered is on no loop: a cloud
    assert sum(e.kind == "cloud" for e in view.elements) == 1
    assert ("infection", "Infected") in highlight and len(labels) == 3


def test_diagram_of_a_large_model_is_one_figure_per_view(tmp_path, capsys):
    assert cli("diagram", MODELS / "policy_loop.mdl", "--out", tmp_path / "pl") == 0
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == sorted(f"pl-{re.sub('[^a-z0-9]+', '_', v.name.lower())}.png"
                             for v in layout(stock_flow(build_structure(MODELS / "policy_loop.mdl"))))
    assert "small text" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["policy_loop.mdl", "sector_lifecycle.mdl"])
def test_bundled_model_sketch_is_in_sync_with_its_equations(name):
    """Every variable of the equations is in the sketch and nothing else: after an equation
    edit, regenerate with `sdloop sketch models/NAME --in-place` (models/README.md)."""
    path = MODELS / name
    text = path.read_text()
    assert split_sketch(text)[1], f"{name} has no sketch: run `sdloop sketch {path} --in-place`"
    check_sketch(text, path)
