"""Claims as data: comparisons of metrics across runs, per draw, with sets, never and undefined."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdloop.experiments.claims import Claim, ClaimSpec, claims_table
from sdloop.experiments.metrics import MetricError

ENTRIES = {"case": ["nev", "ic"], "scenario": ["baseline", "shock"], "strategy": ["none", "phased", "both"]}
METRICS = ["peak", "year"]


def table(n: int = 1, **values) -> dict:
    """Every run of ENTRIES with peak and year; ``values`` override 'metric/case/scenario/strategy'."""
    out = {}
    for c in ENTRIES["case"]:
        for sc in ENTRIES["scenario"]:
            for i, st in enumerate(ENTRIES["strategy"]):
                out[(c, sc, st)] = {"peak": np.full(n, 0.1 * (i + 1)), "year": np.full(n, 2020.0 + i)}
    for key, value in values.items():
        metric, c, sc, st = key.split("__")
        out[(c, sc, st)][metric] = np.asarray(value, dtype=float) * np.ones(n)
    return out


def claim(holds: str, **defaults) -> Claim:
    return Claim(ClaimSpec("c", holds, line=4, defaults=tuple(defaults.items())), METRICS, ENTRIES, "p.toml")


def test_a_comparison_across_strategies_holds_or_not():
    c = claim('peak(strategy="both") > peak(strategy="none")', case="ic", scenario="baseline")
    holds, seen = c.evaluate(table())
    assert holds.tolist() == [True]
    assert [label for label, _ in seen] == ["peak[ic/baseline/both]", "peak[ic/baseline/none]"]
    assert c.evaluate(table(peak__ic__baseline__both=0.05))[0].tolist() == [False]


def test_sets_reduce_and_combine_over_the_same_entries():
    c = claim('year(strategy="phased") <= min(year(strategy="*"))', case="nev", scenario="baseline")
    assert c.evaluate(table())[0].tolist() == [False]  # 'none' is earlier
    rise = claim('peak(scenario="shock", strategy="none") - peak(scenario="baseline", strategy="none") '
                 '> max(peak(scenario="shock", strategy="*", exclude="none") '
                 '- peak(scenario="baseline", strategy="*", exclude="none"))', case="ic")
    assert rise.evaluate(table(peak__ic__shock__none=0.9))[0].tolist() == [True]
    assert rise.evaluate(table(peak__ic__shock__phased=0.9))[0].tolist() == [False]
    assert claim('all(peak(strategy=["phased", "both"]) > 0.15)', case="nev", scenario="baseline") \
        .evaluate(table())[0].tolist() == [True]


def test_never_compares_as_later_and_undefined_never_holds():
    never = table(year__nev__baseline__phased=math.inf)
    assert claim('year(strategy="none") < year(strategy="phased")', case="nev", scenario="baseline") \
        .evaluate(never)[0].tolist() == [True]
    assert claim('defined(year(strategy="phased"))', case="nev", scenario="baseline") \
        .evaluate(never)[0].tolist() == [False]
    undefined = table(peak__nev__baseline__none=math.nan)
    for text in ('peak(strategy="none") < 1', 'peak(strategy="none") >= 1', 'not (peak(strategy="none") < 1)'):
        result = claim(text, case="nev", scenario="baseline").evaluate(undefined)[0].tolist()
        assert result == ([True] if text.startswith("not") else [False])


def test_draw_by_draw():
    data = table(4, peak__nev__baseline__both=[0.0, 0.5, 0.0, 0.5])
    holds, _ = claim('peak(strategy="both") > peak(strategy="phased")', case="nev", scenario="baseline") \
        .evaluate(data)
    assert holds.tolist() == [False, True, False, True]


def test_claims_table_lists_values_and_not_evaluated_claims():
    specs = [ClaimSpec("a", 'peak(strategy="both") > peak(strategy="none")', "A is so",
                       defaults=(("case", "ic"), ("scenario", "baseline")))]
    claims = [Claim(s, METRICS, ENTRIES, "p.toml") for s in specs]
    full = claims_table(claims, table())
    assert full.loc[0, "holds"] == True  # noqa: E712 (a bool column)
    assert "peak[ic/baseline/both]=0.3" in full.loc[0, "values"]
    partial = {k: v for k, v in table().items() if k[2] != "both"}
    missing = claims_table(claims, partial)
    assert missing.loc[0, "holds"] == "" and missing.loc[0, "values"].startswith("not evaluated")


@pytest.mark.parametrize("holds, words", [
    ('peek(strategy="none") > 0', "did you mean 'peak'"),
    ('peak(strategy="nonne") > 0', "did you mean 'none'"),
    ('peak(strategy="none")', "must be true or false"),
    ('peak(case="ic") > 0', "which strategy?"),
    ('peak(strategy="*") > 0', "must be true or false"),
    ('peak(strategy="none") and 1', "needs true/false values"),
    ('peak(strategy="none", colour="red") > 0', "unknown selection 'colour'"),
    ('peak(strategy="none") >', "not a valid expression"),
])
def test_bad_claims_fail_with_file_line_and_close_names(holds, words):
    with pytest.raises(MetricError) as err:
        claim(holds, scenario="baseline", case="nev")
    assert str(err.value).startswith("p.toml:4: claim c: ")
    assert words in str(err.value)
