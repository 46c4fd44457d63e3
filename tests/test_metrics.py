"""Metrics as data: the expression language, its safety, its errors, one run and N runs alike."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sdloop.experiments.metrics import MetricError, MetricSet, MetricSpec, RunView
from sdloop.lang import formula
from sdloop.lang.names import resolve_name

TIMES = np.arange(2006, 2035.25, 0.25)


class FakeModel:
    """Names and constants as a model has them (resolution as the engines do it)."""

    variables = ["Technological Capability", "Supply Shortfall", "Cumulative Fiscal Cost", "Breakthrough Threshold",
                 "Self Sufficiency"]
    defaults = {"Breakthrough Threshold": 0.6}

    def resolve(self, name, *, constants_only=False, source=None, line=None):
        pool = list(self.defaults) if constants_only else self.variables
        return resolve_name(name, pool, model_name="fake.mdl", constants_only=constants_only, source=source,
                            line=line)


def frame(capability=None) -> pd.DataFrame:
    return pd.DataFrame({
        "Technological Capability": np.linspace(0.2, 1.0, len(TIMES)) if capability is None else capability,
        "Supply Shortfall": np.where((TIMES > 2010) & (TIMES < 2012), 0.4, 0.0),
        "Cumulative Fiscal Cost": np.linspace(0, 800, len(TIMES)),
        "Self Sufficiency": np.full(len(TIMES), 0.5),
    }, index=pd.Index(TIMES, name="time"))


def evaluate(expr: str, data=None, params=None, **entries) -> float:
    metrics = MetricSet([MetricSpec("m", expr, line=7)], FakeModel(), horizon=2035, source="p.toml",
                        entries=entries or None)
    view = RunView.of_frame(frame() if data is None else data, params or {}, FakeModel.defaults)
    return float(metrics.evaluate(view, None)["m"][0])


@pytest.mark.parametrize("expr, expected", [
    ('at("Self Sufficiency", 2035)', 0.5),
    ('at(Technological_Capability, 2020.5)', 0.6),
    ('at("Technological Capability", 2020.6)', 0.6),  # last saved time at or before
    ('initial("Cumulative Fiscal Cost")', 0.0),
    ('first_time("Technological Capability" >= "Breakthrough Threshold")', 2020.5),
    ('first_time("Technological Capability" >= 0.3, start=2015)', 2015.0),
    ('max("Supply Shortfall")', 0.4),
    ('max("Supply Shortfall", start=2012)', 0.0),
    ('min("Technological Capability", start=2010, end=2011)', 0.2 + 0.8 * 4 / 29),
    ('mean("Self Sufficiency")', 0.5),
    ('integral("Self Sufficiency", start=2006, end=2016)', 5.0),
    ('ratio(at("Cumulative Fiscal Cost"), at("Technological Capability") - initial("Technological Capability"))',
     1000.0),
    ('max(at("Self Sufficiency"), 0.7)', 0.7),
    ('abs(-2) * at("Self Sufficiency") ** 2', 0.5),
    ('horizon - 2000', 35.0),
])
def test_functions_on_a_known_trajectory(expr, expected):
    assert evaluate(expr) == pytest.approx(expected)


def test_never_reached_and_undefined_are_explicit():
    assert evaluate('first_time("Technological Capability" >= 2)') == math.inf  # never
    flat = frame(np.full(len(TIMES), 0.5))
    assert math.isnan(evaluate('ratio(at("Cumulative Fiscal Cost"), at("Technological Capability") - '
                               'initial("Technological Capability"))', flat))  # no gain: undefined, never best
    assert math.isnan(evaluate('ratio(1, 0)'))
    assert evaluate('first_time("Technological Capability" >= "Breakthrough Threshold")',
                    params={"Breakthrough Threshold": 0.2}) == 2006.0  # a run's own constant


def test_one_run_and_n_runs_give_the_same_numbers():
    rng = np.random.default_rng(3)
    n = 25
    runs = [frame(np.cumsum(rng.uniform(0, 0.05, len(TIMES)))) for _ in range(n)]
    exprs = ['first_time("Technological Capability" >= "Breakthrough Threshold")', 'max("Supply Shortfall")',
             'ratio(at("Cumulative Fiscal Cost"), at("Technological Capability") - 0.5)',
             'integral("Technological Capability", start=2010)']
    metrics = MetricSet([MetricSpec(f"m{i}", e) for i, e in enumerate(exprs)], FakeModel(), horizon=2035,
                        source=None)
    stacked = {c: np.column_stack([r[c].to_numpy() for r in runs]) for c in runs[0].columns}
    threshold = rng.uniform(0.3, 1.5, n)
    together = metrics.evaluate(RunView(TIMES, stacked.__getitem__, {"Breakthrough Threshold": threshold},
                                        FakeModel.defaults, n), None)
    for i, run in enumerate(runs):
        one = metrics.evaluate(RunView.of_frame(run, {"Breakthrough Threshold": threshold[i]}, FakeModel.defaults),
                               None)
        for name in one:  # equal, up to the order numpy adds the integral's terms in
            np.testing.assert_allclose(together[name][i], one[name][0], rtol=1e-14)


def test_diff_and_under_compare_with_another_run_at_the_same_time():
    metrics = MetricSet([MetricSpec("rise", 'max(diff("Supply Shortfall", scenario="baseline"))'),
                         MetricSpec("peak_rise", 'diff(max("Supply Shortfall"), scenario="baseline")'),
                         MetricSpec("other", 'under(at("Self Sufficiency"), strategy="none")')],
                        FakeModel(), horizon=2035, source=None,
                        entries={"scenario": ["baseline", "shock"], "strategy": ["none", "some"]})
    base, shock = frame(), frame()
    shock["Supply Shortfall"] = np.where(TIMES > 2020, 0.3, 0.0)
    base["Self Sufficiency"] = 0.25
    exports = {}
    views = {"baseline": RunView.of_frame(base, {}, {}), "shock": RunView.of_frame(shock, {}, {})}
    for e in metrics.exports:
        for name, view in views.items():
            exports[(e.id, name)] = e.node.run(view, None)
    key = {e.id: dict(e.target).get("scenario", "baseline") for e in metrics.exports}
    found = metrics.evaluate(views["shock"], lambda export: exports[(export.id, key[export.id])])
    assert found["rise"][0] == pytest.approx(0.3)  # largest gap at the same time: 0.3 - 0 after 2020
    assert found["peak_rise"][0] == pytest.approx(-0.1)  # 0.3 - 0.4: the peaks differ less
    assert found["other"][0] == 0.25


@pytest.mark.parametrize("expr, words", [
    ('at("Technological Capabilty")', "did you mean 'Technological Capability'"),
    ('max(Supply_Shortfal)', "did you mean 'Supply Shortfall'"),
    ('at("Technological Capability") >', "not a valid expression"),
    ('maximum("Supply Shortfall")', "unknown function 'maximum'"),
    ('at("Supply Shortfall", "Self Sufficiency")', "must be a number"),
    ('"Supply Shortfall"', "gives a series over time, expected a value per run"),
    ('first_time(at("Supply Shortfall"))', "needs a condition over time"),
    ('diff(max("Supply Shortfall"), scenario="basline")', "did you mean 'baseline'"),
    ('max("Supply Shortfall", stop=2020)', "has no argument 'stop'"),
])
def test_errors_name_file_line_metric_and_closest_names(expr, words):
    with pytest.raises(MetricError) as err:
        MetricSet([MetricSpec("peak", expr, line=12)], FakeModel(), horizon=2035, source="study.project.toml",
                  entries={"scenario": ["baseline", "shock"]})
    assert str(err.value).startswith("study.project.toml:12: metric peak: ")
    assert words in str(err.value)


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo hacked')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read()",
    "[x for x in (1, 2)]",
    "lambda: 1",
    "at.__globals__",
    "(x := 1)",
    "f'{1}'",
    "1 if 1 else 2",
    "a in b",
    "{'a': 1}",
    "max(*[1])",
])
def test_the_parser_refuses_everything_outside_its_whitelist(text):
    """Nothing is ever evaluated: these fail to parse, or name functions the metric language lacks."""
    try:
        tree = formula.parse(text)
    except formula.FormulaError:
        return
    # what parses is only calls of plain names: the metric compiler refuses unknown functions
    with pytest.raises(MetricError):
        MetricSet([MetricSpec("m", text)], FakeModel(), horizon=2035, source=None)
    assert all(type(node).__name__ in {"Num", "Str", "Name", "Call", "ListOf", "Unary", "Binary", "Compare", "Logic"}
               for node in formula.walk(tree))


def test_the_parser_has_limits():
    with pytest.raises(formula.FormulaError, match="longer than"):
        formula.parse("1+" * 3000 + "1")
    with pytest.raises(formula.FormulaError, match="nested too deeply"):
        formula.parse("abs(" * 100 + "1" + ")" * 100)
    assert formula.parse("max(\n  1,\n  2)") == formula.Call("max", (formula.Num(1.0), formula.Num(2.0)), ())
