"""What models/sector_lifecycle.mdl claims, checked through its behaviour (issue 3).

Findings 1-5 are those of the seed papers (seeds 000_5b5cdfbacce1be11.txt and
004_6602ab53006f33df.txt); the model must produce them through its mechanisms. The
comparisons are orderings between strategies, not copies of output numbers; the only
fixed margin (finding 4, "well before" = at least one five-year plan) is stated there.

Runs use the same semantics as ``sdloop run``: overrides = case, then scenario, then
strategy (dict update in that order), every other constant at the model's value.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MODEL_FILE = MODELS / "sector_lifecycle.mdl"

CASES = ("nev", "ic")
STRATEGY_NAMES = ("no_policy", "industrial_only", "trade_restriction_only", "simultaneous",
                  "industrial_then_trade", "lifecycle_phased", "perpetual_protection",
                  "premature_opening")
SCENARIO_NAMES = ("baseline", "export_controls", "backlash", "deglobalization")
LEVERS = ("RD Subsidy", "Production Subsidy", "Talent Platform", "Guidance Fund", "Import Tariff",
          "Import Access", "Substitution Mandate", "Export Promotion", "Standards IP Abroad")

SHARES = ("Self Sufficiency", "Global Market Share", "Supply Shortfall", "Import Dependence",
          "Domestic Preference Share", "Export Preference Share", "Capacity Utilization",
          "Foreign Backlash", "Phase RD", "Phase Scale Up", "Phase Global", "Import Availability",
          "Protection Efficiency")
STOCKS = ("Technological Capability", "Domestic Production Capacity", "Capacity Under Construction",
          "Cumulative Production", "Foreign Cumulative Production", "Accumulated Protection",
          "Foreign Backlash", "Cumulative Fiscal Cost", "Talent Platform Base",
          "Standards Recognition", "Smoothed Orders")
COLUMNS = sorted(set(SHARES + STOCKS + ("Lifecycle Phase", "Breakthrough Threshold",
                                        "Capability Ceiling")))


def _parameters(path: Path) -> dict[str, dict[str, float]]:
    with open(path, "rb") as handle:
        return {name: dict(entry.get("parameters", {})) for name, entry in tomllib.load(handle).items()}


def _case(name: str) -> dict[str, float]:
    with open(MODELS / "cases" / f"{name}.toml", "rb") as handle:
        return dict(tomllib.load(handle)["parameters"])


STRATEGIES = _parameters(MODELS / "strategies.toml")
SCENARIOS = _parameters(MODELS / "scenarios.toml")


def overrides(case: str, scenario: str, strategy: str) -> dict[str, float]:
    params: dict[str, float] = {}
    params.update(_case(case))
    params.update(SCENARIOS[scenario])
    params.update(STRATEGIES[strategy])
    return params


# ---------------------------------------------------------------------------- harness
@pytest.fixture(scope="module")
def sector():
    """The model, translated once. sdloop.engines.pysd_model sets every constant on each run, so
    overrides never leak from one run into the next (the PySD reload() contract)."""
    from sdloop.engines.pysd_model import load_model

    return load_model(MODEL_FILE)


@pytest.fixture(scope="module")
def runs(sector):
    """Every case x scenario x strategy, simulated once and shared by the tests."""
    cache: dict[tuple[str, str, str], object] = {}

    def get(case: str, scenario: str, strategy: str):
        key = (case, scenario, strategy)
        if key not in cache:
            cache[key] = sector.run(overrides(*key), columns=COLUMNS)
        return cache[key]

    return get


def breakthrough_year(run) -> float:
    """First saved year capability reaches the threshold; +inf if never (ranks last)."""
    reached = run.index[run["Technological Capability"] >= run["Breakthrough Threshold"]]
    return float(reached[0]) if len(reached) else math.inf


def peak_shortfall(run) -> float:
    return float(run["Supply Shortfall"].max())


def cost_per_capability(run) -> float:
    capability = run["Technological Capability"]
    return float(run["Cumulative Fiscal Cost"].iloc[-1] / (capability.iloc[-1] - capability.iloc[0]))


# ---------------------------------------------------------------------------- data files
def test_required_strategies_and_scenarios_are_declared():
    assert set(STRATEGY_NAMES) <= set(STRATEGIES)
    assert set(SCENARIO_NAMES) <= set(SCENARIOS)
    assert SCENARIOS["baseline"] == {}
    assert STRATEGIES["no_policy"] == {}


def test_overrides_name_constants_of_the_right_kind(sector):
    """Strategies touch lever constants only; scenarios never touch levers; all names exist."""
    lever_prefixes = tuple(f"{lever} " for lever in LEVERS)
    for name, params in STRATEGIES.items():
        for key in params:
            assert key in sector.constants, f"strategy {name}: unknown constant {key!r}"
            assert key.startswith(lever_prefixes), f"strategy {name} overrides non-lever {key!r}"
    for name, params in SCENARIOS.items():
        for key in params:
            assert key in sector.constants, f"scenario {name}: unknown constant {key!r}"
            assert not key.startswith(lever_prefixes), f"scenario {name} overrides lever {key!r}"
    for case in CASES:
        for key in _case(case):
            assert key in sector.constants, f"case {case}: unknown constant {key!r}"


# ---------------------------------------------------------------------------- findings
def test_finding_1_trade_restriction_without_capacity_causes_shortfall_not_breakthrough(runs):
    restriction = runs("ic", "baseline", "trade_restriction_only")
    for other in ("industrial_then_trade", "lifecycle_phased"):
        run = runs("ic", "baseline", other)
        assert peak_shortfall(restriction) > peak_shortfall(run), other
        assert breakthrough_year(restriction) >= breakthrough_year(run), other


def test_finding_2_lifecycle_phased_breaks_through_first_and_cheaper_than_simultaneous(runs):
    phased = runs("nev", "baseline", "lifecycle_phased")
    assert math.isfinite(breakthrough_year(phased))
    for other in STRATEGY_NAMES:
        assert breakthrough_year(phased) <= breakthrough_year(runs("nev", "baseline", other)), other
    simultaneous = runs("nev", "baseline", "simultaneous")
    assert cost_per_capability(phased) < cost_per_capability(simultaneous)


@pytest.mark.parametrize("case", CASES)
def test_finding_3_perpetual_protection_loses_global_share(runs, case):
    perpetual = runs(case, "baseline", "perpetual_protection")
    phased = runs(case, "baseline", "lifecycle_phased")
    assert perpetual["Global Market Share"].iloc[-1] < phased["Global Market Share"].iloc[-1]


def test_finding_3_premature_opening_loses_self_sufficiency_in_ic(runs):
    premature = runs("ic", "baseline", "premature_opening")
    phased = runs("ic", "baseline", "lifecycle_phased")
    assert premature["Self Sufficiency"].iloc[-1] < phased["Self Sufficiency"].iloc[-1]


def test_finding_4_long_board_breaks_through_well_before_short_board(runs):
    nev = breakthrough_year(runs("nev", "baseline", "lifecycle_phased"))
    ic = breakthrough_year(runs("ic", "baseline", "lifecycle_phased"))
    assert math.isfinite(nev)
    assert nev + 5 <= ic  # "well before": at least one five-year plan earlier (never = +inf)


def test_finding_5_export_controls_hurt_most_where_no_capacity_was_built(runs):
    rise = {s: peak_shortfall(runs("ic", "export_controls", s)) - peak_shortfall(runs("ic", "baseline", s))
            for s in STRATEGY_NAMES}
    assert rise["no_policy"] > 0
    for strategy in STRATEGY_NAMES:
        if strategy != "no_policy":
            assert rise["no_policy"] > rise[strategy], (strategy, rise)


# ---------------------------------------------------------------------------- bounds
def check_bounds(run, label: str) -> None:
    assert np.isfinite(run.to_numpy(dtype=float)).all(), label
    for name in SHARES:
        assert ((run[name] >= 0) & (run[name] <= 1)).all(), f"{name} left [0, 1]: {label}"
    for name in STOCKS:
        assert (run[name] >= 0).all(), f"{name} went negative: {label}"
    assert (run["Technological Capability"] <= run["Capability Ceiling"]).all(), label
    assert (np.diff(run["Cumulative Fiscal Cost"].to_numpy()) >= 0).all(), label
    phases = run["Phase RD"] + run["Phase Scale Up"] + run["Phase Global"]
    assert np.allclose(phases, 1.0, atol=1e-12), label
    assert ((run["Lifecycle Phase"] >= 1) & (run["Lifecycle Phase"] <= 3)).all(), label


@pytest.mark.parametrize("case", CASES)
def test_every_strategy_and_scenario_stays_within_bounds(runs, case):
    for scenario in SCENARIO_NAMES:
        for strategy in STRATEGY_NAMES:
            check_bounds(runs(case, scenario, strategy), f"{case}/{scenario}/{strategy}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("multiplier", [0, 100])
def test_extreme_lever_intensities_keep_stocks_within_bounds(sector, case, multiplier):
    """All nine levers open from 2006 at 0x or 100x their nominal intensity, under every
    foreign shock at once."""
    params = _case(case)
    for scenario in ("export_controls", "backlash", "deglobalization"):
        params.update(SCENARIOS[scenario])
    for lever in LEVERS:
        nominal = params.get(f"{lever} Intensity", sector.defaults[f"{lever} Intensity"])
        params[f"{lever} Intensity"] = multiplier * nominal
        params[f"{lever} Start Year"] = 2006
        params[f"{lever} End Year"] = 2100
    check_bounds(sector.run(params, columns=COLUMNS), f"{case} x{multiplier}")


def test_shortfall_is_exactly_zero_when_nothing_is_cut(runs):
    for case in CASES:
        for scenario in ("baseline", "backlash", "deglobalization"):
            for strategy in ("no_policy", "industrial_only", "premature_opening"):
                run = runs(case, scenario, strategy)
                assert (run["Import Availability"] == 1.0).all(), (case, scenario, strategy)
                assert (run["Supply Shortfall"] == 0.0).all(), (case, scenario, strategy)
    # and in every run, at every time imports are not cut
    for case in CASES:
        for scenario in SCENARIO_NAMES:
            for strategy in STRATEGY_NAMES:
                run = runs(case, scenario, strategy)
                uncut = run["Import Availability"] == 1.0
                assert (run.loc[uncut, "Supply Shortfall"] == 0.0).all(), (case, scenario, strategy)
