"""Feedback loops and polarity on reference models with known loop structure."""

from __future__ import annotations

import json

import pytest

from analysis_helpers import FIXTURES, loops, run, structure
from sdloop.analysis.loops import TooManyLoops, causal_graph, find_loops, independent_cycles, link_polarities


def summary(name):
    return sorted((loop.polarity, tuple(loop.variables)) for loop in loops(name))


def test_goal_seeking_has_one_balancing_loop():
    assert summary("goal_seeking.mdl") == [("B", ("Level", "gap", "adjustment"))]


def test_exponential_growth_has_one_reinforcing_loop():
    assert summary("exponential_growth.mdl") == [("R", ("Population", "births"))]


def test_logistic_growth_has_r_and_b():
    assert summary("logistic_growth.mdl") == [
        ("B", ("Population", "room to grow", "net growth")),
        ("R", ("Population", "net growth")),
    ]


def test_sir_loops_and_sidecar_names():
    named = {loop.name: (loop.polarity, set(loop.variables)) for loop in loops("sir.mdl")}
    assert named == {
        "Contagion": ("R", {"Infected", "infection"}),
        "Depletion": ("B", {"Susceptible", "infection"}),
        "Recovery": ("B", {"Infected", "recovery"}),
    }


def test_oscillator_is_one_balancing_loop_through_two_stocks():
    (loop,) = loops("oscillator.mdl")
    assert loop.polarity == "B"
    assert loop.variables == ("Position", "deceleration", "Velocity", "movement")


def test_xmile_gives_the_same_loops():
    assert summary("sir.xmile") == summary("sir.mdl")
    assert {loop.name for loop in loops("sir.xmile")} == {"Contagion", "Depletion", "Recovery"}


def test_link_polarity_symbolic_and_along_the_run():
    s = structure("logistic_growth.mdl")
    graph = causal_graph(s)
    links = link_polarities(s, graph, run("logistic_growth.mdl"))
    assert links["room to grow", "net growth"].polarity == "+"
    assert links["Population", "room to grow"].polarity == "-"  # symbolic: -1/capacity
    assert links["net growth", "Population"].polarity == "+"
    # d(net growth)/d(Population) = growth fraction * room to grow: positive while below capacity
    assert links["Population", "net growth"].polarity == "+"


def test_loops_through_a_smooth_are_listed_under_the_vensim_name():
    s = structure("builtins.mdl")
    found = find_loops(s, run("builtins.mdl"))
    assert all(not any("(stage" in v for v in loop.variables) for loop in found)
    assert all(s[loop.variables[0]].kind == "stock" for loop in found)


def test_cap_on_the_number_of_loops():
    s = structure("sir.mdl")
    with pytest.raises(TooManyLoops, match="more than 2 feedback loops"):
        find_loops(s, run("sir.mdl"), max_loops=2)


def test_independent_loop_set_covers_every_link_on_a_loop():
    s = structure("sir.mdl")
    graph = causal_graph(s)
    cycles = independent_cycles(graph)
    assert len(cycles) == 3


def test_cli_json(capsys):
    import argparse

    from sdloop.cli.analysis import add_loops_parser

    parser = argparse.ArgumentParser()
    add_loops_parser(parser.add_subparsers())
    args = parser.parse_args(["loops", str(FIXTURES / "goal_seeking.mdl"), "--format", "json"])
    assert args.handler(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"].endswith("goal_seeking.mdl")
    assert data["loops"] == [{"id": "B1", "name": None, "polarity": "B",
                              "variables": ["Level", "gap", "adjustment"]}]


def test_cli_dominance_writes_figures(tmp_path, capsys):
    import argparse

    from sdloop.cli.analysis import add_loops_parser

    parser = argparse.ArgumentParser()
    add_loops_parser(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["loops", str(FIXTURES / "logistic_growth.mdl"), "--dominance", "--out", str(out)])
    assert args.handler(args) == 0
    text = capsys.readouterr().out
    assert "Dominant loop" in text and "R1" in text and "B1" in text
    for name in ("loops.json", "relative_loop_scores.csv", "relative_loop_scores.pdf",
                 "relative_loop_scores.png", "causal_loop_diagram.pdf", "causal_loop_diagram.png"):
        assert (out / name).stat().st_size > 0


def test_case_overrides_change_the_run(tmp_path, capsys):
    import argparse

    from sdloop.cli.analysis import add_loops_parser

    case = tmp_path / "case.toml"
    case.write_text('description = "slow"\n[parameters]\n"growth fraction" = 0.25\n')
    parser = argparse.ArgumentParser()
    add_loops_parser(parser.add_subparsers())
    args = parser.parse_args(["loops", str(FIXTURES / "logistic_growth.mdl"), "--dominance",
                              "--case", str(case), "--format", "json"])
    assert args.handler(args) == 0
    periods = json.loads(capsys.readouterr().out)["dominance"]
    # slower growth: the stock passes half its capacity later than at growth fraction 0.5 (t = 9.3)
    assert periods[0]["loop"] == "R1" and periods[0]["end"] > 15


def test_derivative_of_a_many_way_max_is_linear_and_right():
    """VMAX over 12 elements: sympy's own derivative merges equal pieces into conditions in
    normal form (exponential: it never finished); ours gives 1 where the element is the
    largest, 0 elsewhere, as sympy does on a small MAX."""
    import sympy

    from sdloop.analysis.derivatives import link_derivative
    from sdloop.structure.vensim_functions import FUNCTIONS

    xs = sympy.symbols("x0:12")
    d = link_derivative(2 * FUNCTIONS["max"](*xs) + xs[0], xs[3])  # hung before
    for largest in (3, 5):
        point = {x: float(i == largest) for i, x in enumerate(xs)}
        assert float(d.subs(point)) == (2.0 if largest == 3 else 0.0)
    a, b, c = xs[:3]
    small = FUNCTIONS["if_then_else"](a > 1, FUNCTIONS["min"](a * b, c), a ** 2) * c
    for point in ({a: 2, b: 3, c: 10}, {a: 2, b: 3, c: 1}, {a: 0.5, b: 3, c: 1}):
        assert link_derivative(small, a).subs(point) == sympy.diff(small, a).subs(point)


def test_diagram_labels_keep_subscripts_whole():
    from sdloop.report.loop_plots import node_label

    assert node_label("shipments[Boston]") == "shipments\n[Boston]"  # was 'shipments[Boston\n]'
    assert node_label("x[a]") == "x[a]"
    assert node_label("Technological Capability Gap") == "Technological\nCapability Gap"
