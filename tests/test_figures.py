"""Figures for papers: every spec of the bundled projects renders at paper size, many lines stay
readable (labels never overlap, legends never cover data), `sdloop plot` from a project and a
run directory, and the items of issue #12 (phase grays, loop dominance, regret units, ranking of
undefined ratios, causal-loop labels)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from test_cli import sdloop

SECTOR = MODELS / "sector.project.toml"
POLICY = MODELS / "policy_loop.project.toml"
PAPER_PX = round(183 / 25.4 * 300)  # a 183 mm wide figure at 300 dpi


def png_width(path: Path) -> int:
    from matplotlib.image import imread

    return imread(path).shape[1]


def drawn(fig):
    """The figure laid out and drawn on an Agg canvas; its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.fixture(scope="module")
def sector_study():
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(SECTOR).select(cases="nev", scenarios="baseline"))
    return study, study.run(progress=False)


def test_every_figure_spec_of_the_bundled_projects_renders(tmp_path, sector_study):
    """Each [[figures]] and [[ensemble.figures]] spec of both projects draws a PDF and a PNG about
    183 mm wide (the ensemble on a few draws)."""
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study
    from sdloop.report.cache import Cache
    from sdloop.report.ensemble_report import run_project_ensemble
    from sdloop.report.study_report import run_study

    policy = Study(load_project(POLICY))
    drawn = {}
    for study, result in ((policy, None), sector_study):
        report = run_study(study, tmp_path, cache=Cache(enabled=False))
        drawn[study.project.name] = report
    sector, _ = sector_study
    run_project_ensemble(sector, tmp_path / "ensemble", cache=Cache(enabled=False), samples=16, sobol=8,
                         progress=False)
    expected = ["policy_loop/key_stocks_baseline", "policy_loop/scenario_comparison", "policy_loop/loop_dominance",
                "sector/figures/nev_baseline_strategies", "sector/figures/nev_ranking",
                "ensemble/figures/nev_best_probability", "ensemble/figures/nev_baseline_regret",
                "ensemble/figures/nev_baseline_technological_capability_fan", "ensemble/figures/nev_sobol"]
    kinds = {spec.kind for study in (policy, sector) for spec in study.project.figures}
    kinds |= {spec.kind for spec in sector.project.ensemble.figures}
    assert kinds == {"plot", "lines", "compare", "loop_dominance", "ranking", "best_probability", "regret", "fan",
                     "sobol"}
    for stem in expected:
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 1000, stem
        width = png_width(tmp_path / f"{stem}.png")
        assert PAPER_PX * 0.8 <= width <= PAPER_PX * 1.3, (stem, width)


def test_spread_never_leaves_two_labels_closer_than_the_gap():
    from sdloop.report.line_panels import spread

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 8, 12):
        y = rng.uniform(0, 1, n)
        y[: n // 2] = 0.5  # several lines ending at the same value
        placed = spread(y, 0.06)
        assert np.all(placed >= -1e-9) and np.all(placed <= 1 + 1e-9)
        if n * 0.06 <= 1:
            gaps = np.diff(np.sort(placed))
            assert np.all(gaps >= 0.06 - 1e-9)
        assert list(np.argsort(placed, kind="stable")) == list(np.argsort(y, kind="stable"))


def _eight_lines_payload():
    t = np.linspace(2006, 2035, 117)
    frame = pd.DataFrame({f"strategy_{i}": 0.5 + 0.01 * i * (t - 2006) / 29 for i in range(8)}, index=t)
    return {"panels": [{"title": "x", "ylabel": "x (-)", "series": frame},
                       {"title": "y", "ylabel": "y (-)", "series": frame * 2}], "time_label": "Year"}


def test_eight_lines_get_direct_labels_that_do_not_overlap_and_no_legend_over_data():
    from sdloop.report.line_panels import render_plot

    fig = render_plot(_eight_lines_payload())
    renderer = drawn(fig)
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_text().startswith("strategy")]
        assert len(labels) == 8  # every line named at its end, though all end within 0.07
        extents = [t.get_window_extent(renderer) for t in labels]
        assert not any(boxes_overlap(a, b) for a, b in itertools.combinations(extents, 2))
        assert all(e.x0 >= ax.get_window_extent(renderer).x1 for e in extents)  # beside the axes
        assert ax.get_legend() is None
        saved = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # what save_figure keeps (pixels)
        assert all(e.x1 <= saved.x1 + 0.5 for e in extents)  # no label cut off at the figure's edge
    # every series has its own gray-and-dash pair and its own marker
    looks = {(tuple(map(str, [l.get_color(), l.get_linestyle()])), l.get_marker())
             for l in fig.axes[0].lines if l.get_label().startswith("strategy")}
    assert len(looks) == 8 and len({m for _, m in looks}) == 8


def test_four_lines_get_a_legend_outside_the_axes():
    from sdloop.report.line_panels import render_plot

    payload = _eight_lines_payload()
    for panel in payload["panels"]:
        panel["series"] = panel["series"].iloc[:, :4]
    fig = render_plot(payload)
    renderer = drawn(fig)
    legend = fig.legends[0].get_window_extent(renderer)
    assert len(fig.legends[0].get_texts()) == 4
    assert not any(boxes_overlap(legend, ax.get_window_extent(renderer)) for ax in fig.axes)


def test_many_banded_lines_become_small_multiples():
    from sdloop.report.line_panels import render_plot, use_multiples

    payload = _eight_lines_payload()
    band = pd.DataFrame({p: payload["panels"][0]["series"].iloc[:, 0] + d for p, d in
                         (("p5", -0.1), ("p25", -0.05), ("p50", 0), ("p75", 0.05), ("p95", 0.1))})
    payload["panels"][0]["bands"] = {f"strategy_{i}": band for i in range(3)}
    assert use_multiples(payload)
    fig = render_plot(payload)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 16  # 2 variables x 8 strategies


def test_phases_that_share_a_gray_are_refused(tmp_path):
    text = POLICY.read_text(encoding="utf-8").replace('shade = "0.92"', 'shade = "0.97"')
    copy = tmp_path / "p.project.toml"
    copy.write_text(text.replace('model = "policy_loop.mdl"', f'model = "{MODELS / "policy_loop.mdl"}"')
                    .replace('"policy_loop_scenarios.toml"', f'"{MODELS / "policy_loop_scenarios.toml"}"'),
                    encoding="utf-8")
    from sdloop.experiments.project import load_project
    from sdloop.experiments.project_specs import ProjectError

    with pytest.raises(ProjectError, match="share the gray 0.97"):
        load_project(copy)
    shades = [p.shade for p in load_project(POLICY).phases]
    assert len(set(shades)) == len(shades)


def test_undefined_ratios_are_not_ranked_and_no_policy_is_not_best_on_cost_per_capability(sector_study):
    """No policy gains nothing over itself: its cost per capability is undefined, never best."""
    from sdloop.experiments.metrics import MetricSpec
    from sdloop.report.figures import rank_runs

    study, result = sector_study
    table = result.metrics.set_index("strategy")
    assert np.isnan(table.loc["no_policy", "cost_per_capability"])
    ranks = rank_runs(table[["cost_per_capability"]], {"cost_per_capability": study.specs["cost_per_capability"]})
    assert np.isnan(ranks.loc["no_policy", "cost_per_capability"])
    best = ranks["cost_per_capability"].idxmin()
    assert table.loc[best, "cumulative_fiscal_cost"] > 0
    frame = pd.DataFrame({"m": [2.0, np.nan, np.inf, 1.0]}, index=list("abcd"))
    got = rank_runs(frame, {"m": MetricSpec("m", "x", better="lower")})["m"]
    assert got["d"] == 1 and got["a"] == 2 and got["c"] == 3 and np.isnan(got["b"])


def test_regret_axes_carry_the_metric_unit():
    from sdloop.report.ensemble_plots import regret_figure

    table = pd.DataFrame({"strategy": ["a", "b"], "metric": ["cost", "cost"], "p_best": [0.5, 0.5],
                          "max_regret": [1.0, np.nan], "mean_regret": [0.5, np.nan]})
    fig = regret_figure(table, units={"cost": "billion yuan"})
    assert fig.axes[0].get_xlabel() == "regret (billion yuan)"
    assert any("no value" in t.get_text() for t in fig.axes[0].texts)


@pytest.fixture(scope="module")
def policy_dominance():
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(POLICY))
    return analyse_model(study.project.model, study.params[("", "baseline", "")], dominance=True).dominance


def test_loop_dominance_figure_draws_every_dominant_loop_and_sums_none(policy_dominance):
    from sdloop.report.loop_plots import relative_scores_plot, shown_loops

    dominance = policy_dominance
    for min_period in (0.0, 2.0):
        shown = shown_loops(dominance, min_period=min_period)
        dominant = {p.loop for p in dominance.periods(min_period) if p.partition == 0 and p.loop}
        assert dominant <= set(shown)
    ax = relative_scores_plot(dominance, min_period=2.0, phases=((2006, 2013, "a", "0.97"), (2013, None, "b", "0.9")))
    labels = [t.get_text() for t in ax.figure.legends[0].get_texts()]
    assert not any("(sum)" in label for label in labels)
    strip = ax.figure.axes[0]
    assert {t.get_text() for t in strip.texts} >= {p.loop for p in dominance.periods(2.0) if p.loop}


def test_causal_loop_diagram_labels_do_not_overlap():
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.report.loop_plots import causal_loop_diagram

    analysis = analyse_model(MODELS / "policy_loop.mdl")
    named = [loop for loop in analysis.loops if loop.name]
    ax = causal_loop_diagram(analysis.structure, named, analysis.links)
    fig = ax.figure
    renderer = drawn(fig)
    names = [t for t in ax.texts if t.get_text() not in ("", "+", "\u2212", "\u00b1")]
    boxes = [(t.get_bbox_patch() or t).get_window_extent(renderer) for t in names]
    hits = [(a.get_text(), b.get_text()) for (a, ea), (b, eb) in itertools.combinations(zip(names, boxes), 2)
            if boxes_overlap(ea, eb)]
    assert len(names) > 40 and not hits, hits
    assert abs(fig.get_figwidth() - 183 / 25.4) < 0.01


def test_plot_from_a_project_and_its_toml_reproduce_the_same_figure(tmp_path, sector_study):
    """`sdloop plot` draws the figure; --show-toml prints the [[figures]] table that, in the project
    file, makes the same figure (the same data) in a run."""
    out = tmp_path / "plots"
    args = [str(SECTOR), "--vars", "Technological Capability,Self Sufficiency", "--cases", "nev",
            "--scenarios", "baseline", "--strategies", "no_policy,industrial_only,lifecycle_phased",
            "--to", "2030", "--out", str(out), "--name", "two", "--show-toml"]
    result = sdloop("plot", *args)
    assert result.returncode == 0, result.stderr
    assert (out / "two.pdf").exists() and png_width(out / "two.png") > PAPER_PX * 0.8
    toml = result.stdout[result.stdout.index("[[figures]]"):]
    assert 'kind = "plot"' in toml and 'to = 2030' in toml
    import argparse
    import dataclasses
    import tomllib

    from sdloop.cli.main import build_parser
    from sdloop.cli.plot import options_from
    from sdloop.experiments.figure_checks import plot_options_of
    from sdloop.experiments.metrics import Where
    from sdloop.experiments.plot_spec import PLOT_KEYS, plot_options
    from sdloop.experiments.project_specs import Context, read_figures
    from sdloop.experiments.toml_lines import TomlLines
    from sdloop.report.cache import digest
    from sdloop.report.figures import figure_jobs
    from sdloop.report.plot_figures import plot_jobs

    study, run = sector_study
    parsed: argparse.Namespace = build_parser().parse_args(["plot", *args])
    from_flags = plot_jobs(study, run.runs, "two", None, plot_options(options_from(parsed), Where(None, None, "x")))
    specs = read_figures(tomllib.loads(toml)["figures"], Context(SECTOR, TomlLines(toml)), {"plot": PLOT_KEYS},
                         "figures")
    study.project = dataclasses.replace(study.project, figures=specs)
    from_toml = figure_jobs(run)
    assert [j.stem for j in from_toml] == ["two"]
    assert digest(from_toml[0].payload) == digest(from_flags[0].payload)
    frame = from_toml[0].payload["panels"][0]["series"]
    assert list(frame.columns) == ["no_policy", "industrial_only", "lifecycle_phased"]
    assert frame.index.max() == pytest.approx(2030)
    assert plot_options_of(specs[0], Where(None, None, "x")).end == 2030


def test_plot_fails_in_one_line_on_an_unknown_variable(tmp_path):
    result = sdloop("plot", str(SECTOR), "--vars", "Technological Capabilty", "--cases", "nev",
                    "--scenarios", "baseline", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Technological Capability" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_plot_from_a_run_directory_with_bands_and_data(tmp_path):
    run = sdloop("run", str(SECTOR), "--cases", "nev", "--scenarios", "baseline", "-n", "16", "--no-cache",
                 "--results", str(tmp_path / "results"))
    assert run.returncode == 0, run.stderr
    out = tmp_path / "plots"
    result = sdloop("plot", str(tmp_path / "results" / "latest"), "--vars",
                    "Technological Capability,Home Adoption Share", "--strategies", "no_policy,lifecycle_phased",
                    "--bands", "--data", "--out", str(out), "--name", "fig")
    assert result.returncode == 0, result.stderr
    assert "no ensemble bands of 'Home Adoption Share'" in result.stderr  # not an [ensemble] band
    assert (out / "fig.png").exists()
