"""Schedule optimisation: lever windows searched within bounds, under a budget, with the frontier.

An optimisation file (TOML) names a project, one case and scenario, the strategy whose
parameters sit under the searched ones (``base``), the constants to search with their bounds,
the metrics to optimise (``objectives``, each ranked by its ``better`` in the project), the
metric that is the budget (``cost``) and the budget levels (``budgets``: that many levels from
0 to the largest cost of the named strategies, or a list)::

    project = "study.project.toml"
    case = "a"
    scenario = "baseline"
    base = "no_policy"
    objectives = ["time_to_goal", "share_at_horizon"]
    cost = "total_cost"
    budgets = 5
    population = 48            # candidates per generation (one engine call)
    generations = 12
    seed = 1
    [variables]                # name = [low, high]
    "Programme Start" = [2000, 2020]
    [robust]                   # optional: every candidate on the same draws of the project's
    draws = 16                 # uncertainty file; each metric is its q-quantile over the draws
    quantile = 0.9             # (worst case at 1; of the oriented value, so "worse" for both senses)
    criterion = "regret"       # optional: objectives as maximum regret over the draws (below)

With ``criterion = "regret"`` each objective is scored by its maximum regret over the draws
(minimax regret): on each draw, how far the schedule falls behind the best of the named
strategies on that draw, in the metric's unit (negative where it beats all of them); the cost
stays the q-quantile. Named strategies are scored the same way, against the same reference.

For every objective and budget level scipy's differential evolution (seeded, vectorized: each
population is one engine call) minimises the oriented objective plus a penalty on cost above
the budget. Every candidate evaluated is kept; the frontier is the set not dominated in (cost,
objective); each named strategy of the project is evaluated on the same terms and marked as on
the frontier or dominated. A never-reached value counts as the metric's ``never`` (else one year
after the horizon); an undefined one as the worst.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution

from sdloop.errors import OverrideError
from sdloop.experiments.metrics import MetricSet, RunView
from sdloop.experiments.overrides import merge, read_toml
from sdloop.experiments.uncertainty import load_uncertainty

KEYS = {"project", "case", "scenario", "base", "objectives", "cost", "budgets", "population", "generations",
        "seed", "variables", "robust", "strategies"}
CRITERIA = ("quantile", "regret")


@dataclass(frozen=True)
class OptimizeSpec:
    path: Path
    project: Path
    case: str
    scenario: str
    base: str
    objectives: tuple[str, ...]
    cost: str
    variables: Mapping[str, tuple[float, float]]
    budgets: tuple[float, ...] | int = 5
    population: int = 48
    generations: int = 12
    seed: int = 1
    draws: int = 0
    quantile: float = 1.0
    strategies: tuple[str, ...] = ()  # named strategies to mark (default: all of the project)
    criterion: str = "quantile"  # robust objectives: "quantile" of the value, or maximum "regret"


def _error(path: Path, text: str, key: str, message: str) -> OverrideError:
    line = next((i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith((key, f'"{key}"'))), None)
    return OverrideError(message, file=path, line=line, variable=key)


def load_optimize_spec(path: str | Path) -> OptimizeSpec:
    """Read an optimisation file (see the module docstring); OverrideError names FILE:LINE."""
    path = Path(path)
    data, text = read_toml(path)
    for key in data:
        if key not in KEYS:
            raise _error(path, text, key, f"unknown key (expected {', '.join(sorted(KEYS))})")
    for key in ("project", "case", "scenario", "base", "objectives", "cost", "variables"):
        if key not in data:
            raise OverrideError(f"missing key '{key}'", file=path)
    variables = {}
    for name, bounds in data["variables"].items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
                and bounds[0] < bounds[1]):
            raise _error(path, text, name, "bounds must be [low, high] with low < high")
        variables[name] = (float(bounds[0]), float(bounds[1]))
    objectives = data["objectives"]
    if isinstance(objectives, str):
        objectives = [objectives]
    budgets = data.get("budgets", 5)
    budgets = tuple(float(b) for b in budgets) if isinstance(budgets, list) else int(budgets)
    robust = data.get("robust", {})
    criterion = robust.get("criterion", "quantile")
    if criterion not in CRITERIA:
        raise _error(path, text, "criterion", f"criterion must be one of {', '.join(CRITERIA)}")
    return OptimizeSpec(path, (path.parent / data["project"]).resolve(), str(data["case"]), str(data["scenario"]),
                        str(data["base"]), tuple(objectives), str(data["cost"]), variables, budgets,
                        int(data.get("population", 48)), int(data.get("generations", 12)), int(data.get("seed", 1)),
                        int(robust.get("draws", 0)), float(robust.get("quantile", 1.0)),
                        tuple(data.get("strategies", ())), criterion)


@dataclass
class Evaluation:
    """Candidates evaluated so far: their variables and metric values (one row each)."""

    rows: list = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class ScheduleEvaluator:
    """Metric values of N candidate schedules (and, robustly, of each over M draws) in one engine call."""

    def __init__(self, spec: OptimizeSpec, study) -> None:
        self.spec, self.study, self.sim = spec, study, study.sim
        project = study.project
        for dim, name in (("case", spec.case), ("scenario", spec.scenario), ("strategy", spec.base)):
            if name not in project.entries(dim):
                raise OverrideError(f"unknown {dim} {name!r}; known: {', '.join(project.entries(dim))}",
                                    file=spec.path, variable=dim if dim != "strategy" else "base")
        self.names = [self.sim.resolve(n, constants_only=True, source=spec.path) for n in spec.variables]
        self.bounds = np.array([spec.variables[n] for n in spec.variables])
        layers = project.layers((spec.case, spec.scenario, spec.base))
        self.base = merge(self.sim, layers[:-2])
        self.top = merge(self.sim, layers[-2:])  # scenario < base strategy; the searched names win over both
        wanted = {*spec.objectives, spec.cost}
        unknown = wanted - {m.name for m in project.metrics}
        if unknown:
            raise OverrideError(f"unknown metric {sorted(unknown)[0]!r}; known: {', '.join(m.name for m in project.metrics)}",
                                file=spec.path, variable="objectives")
        self.specs = {m.name: m for m in project.metrics}
        self.metrics = MetricSet([m for m in project.metrics if m.name in wanted], self.sim,
                                 horizon=study.horizon, source=project.path)
        self.draws = None
        if spec.draws:
            space = load_uncertainty(project.ensemble.uncertainty).checked(self.sim.resolve)
            own = {n: self.base.get(n, self.sim.defaults[n]) for n in space.names}
            unit = space.unit_sample(spec.draws, seed=spec.seed)
            self.draws = space.values(unit, own)
        self.reference = None  # per objective: the best named strategy's oriented value on each draw
        if self.draws is not None and spec.criterion == "regret":
            self.reference = self._reference()
        self.history = Evaluation()

    @property
    def regret(self) -> bool:
        return self.reference is not None

    def _reference(self) -> dict[str, np.ndarray]:
        best: dict[str, np.ndarray] = {}
        for name in self.study.project.entries("strategy"):
            if self.spec.strategies and name not in self.spec.strategies:
                continue
            layers = self.study.project.layers((self.spec.case, self.spec.scenario, name))
            raw = self._raw({}, 1, (merge(self.sim, layers[:-2]), merge(self.sim, layers[-2:])))
            for objective in self.spec.objectives:
                o = self._oriented_draws(objective, raw[objective][0])
                best[objective] = np.fmin(best.get(objective, o), o)
        return best

    def _oriented_draws(self, name: str, values: np.ndarray) -> np.ndarray:
        """Per-draw values, lower is better (never-reached as ``never``, undefined as +inf)."""
        spec = self.specs[name]
        never = spec.never if spec.never is not None else self.study.horizon + 1
        v = np.where(np.isposinf(values), never, values)
        v = -v if spec.better == "higher" else v
        return np.where(np.isnan(v), np.inf, v)

    def oriented(self, name: str, values: np.ndarray) -> np.ndarray:
        """Lower is better: never-reached as ``never`` (else horizon + 1), undefined as +inf; an
        objective scored by regret is lower-is-better already."""
        if self.regret and name in self.spec.objectives:
            return np.where(np.isnan(values), np.inf, values)
        return self._oriented_draws(name, values)

    def run(self, params: Mapping[str, np.ndarray | float], n: int, layers: tuple | None = None) -> dict[str, np.ndarray]:
        """Metric values of ``n`` runs; robust: the q-quantile over the draws, or for objectives
        under ``criterion = "regret"`` the maximum regret against the named strategies."""
        raw = self._raw(params, n, layers)
        if not self.spec.draws:
            return {name: v[:, 0] for name, v in raw.items()}
        out = {}
        for name, v in raw.items():
            if self.regret and name in self.spec.objectives:
                with np.errstate(all="ignore"):
                    regret = self._oriented_draws(name, v) - self.reference[name]
                out[name] = np.nanmax(np.where(np.isnan(regret), -np.inf, regret), axis=1)
                continue
            # the q-quantile over the draws of the oriented value, back in the metric's own sense
            sign = -1.0 if self.specs[name].better == "higher" else 1.0
            o = sign * np.where(np.isposinf(v), self.study.horizon + 1, v)
            with np.errstate(all="ignore"):
                out[name] = sign * np.nanquantile(o, self.spec.quantile, axis=1)
        return out

    def _raw(self, params: Mapping[str, np.ndarray | float], n: int, layers: tuple | None = None) -> dict[str, np.ndarray]:
        """Metric values (n, draws) of ``n`` runs on every draw (NaN where a run went non-finite).
        Layers: the case's (``base``) < the draws < scenario and base strategy (``top``) < ``params``."""
        base, top = layers if layers is not None else (self.base, self.top)
        m = self.spec.draws or 1
        total = n * m
        merged = {k: np.full(total, v) for k, v in base.items()}
        if self.draws is not None:
            merged.update({k: np.tile(v, n) for k, v in self.draws.items()})
        merged.update({k: np.full(total, v) for k, v in top.items()})
        merged.update({k: np.repeat(np.broadcast_to(np.asarray(v, float), (n,)), m) for k, v in params.items()})
        result = self.sim.run(merged, n=total, columns=self.metrics.columns or None, final_time=self.study.final_time)
        view = RunView(result.times, result.__getitem__, merged, self.sim.defaults, total)
        values = self.metrics.evaluate(view, None)
        bad = ~np.asarray(result.finite, dtype=bool)
        return {name: np.where(bad, np.nan, v).reshape(n, m) for name, v in values.items()}

    def candidates(self, x: np.ndarray, label: str) -> dict[str, np.ndarray]:
        """Evaluate a population ``x`` (d, S) in one call and keep it in the history."""
        params = {name: x[j] for j, name in enumerate(self.names)}
        values = self.run(params, x.shape[1])
        for i in range(x.shape[1]):
            self.history.rows.append({"search": label, **{n: x[j, i] for j, n in enumerate(self.names)},
                                      **{k: float(v[i]) for k, v in values.items()}})
        return values


def search(evaluator: ScheduleEvaluator, objective: str, budget: float, *, seed: int) -> tuple[np.ndarray, float]:
    """Best schedule for ``objective`` with ``cost`` at most ``budget`` (differential evolution)."""
    spec = evaluator.spec
    label = f"{objective}<= {budget:g}"
    scale = max(abs(budget), 1.0)

    def penalized(x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x.T).T if x.ndim == 1 else x
        values = evaluator.candidates(x, label)
        over = np.maximum(0.0, values[spec.cost] - budget) / scale
        return evaluator.oriented(objective, values[objective]) + 1e3 * np.nan_to_num(over, nan=1e3)

    d = len(evaluator.names)
    popsize = max(1, int(np.ceil(spec.population / d)))
    found = differential_evolution(penalized, evaluator.bounds, popsize=popsize, maxiter=spec.generations, seed=seed,
                                   vectorized=True, updating="deferred", polish=False, tol=0, init="latinhypercube")
    return found.x, float(found.fun)


def pareto(points: pd.DataFrame, x: str, y: str) -> pd.Series:
    """True for the rows not dominated in (x lower, y lower): no other row is at least as good in
    both and better in one."""
    xs, ys = points[x].to_numpy(float), points[y].to_numpy(float)
    order = np.lexsort((ys, xs))
    keep = np.zeros(len(points), dtype=bool)
    best = np.inf
    for i in order:
        if ys[i] < best:
            keep[i] = True
            best = ys[i]
    return pd.Series(keep, index=points.index)


@dataclass
class FrontierResult:
    points: pd.DataFrame  # every candidate evaluated, with frontier_<objective> flags
    frontier: pd.DataFrame  # the non-dominated points per objective (kind: candidate or named)
    named: pd.DataFrame  # the project's strategies on the same terms, with on_frontier
    best: pd.DataFrame  # the optimum per objective and budget


def named_strategies(evaluator: ScheduleEvaluator, names: Sequence[str]) -> pd.DataFrame:
    """The project's named strategies for the case and scenario, evaluated like candidates."""
    project, sim = evaluator.study.project, evaluator.sim
    rows = []
    for name, entry in project.entries("strategy").items():
        if names and name not in names:
            continue
        layers = project.layers((evaluator.spec.case, evaluator.spec.scenario, name))
        values = evaluator.run({}, 1, (merge(sim, layers[:-2]), merge(sim, layers[-2:])))
        rows.append({"strategy": name, "table": entry.table, **{k: float(v[0]) for k, v in values.items()}})
    return pd.DataFrame(rows)


def optimize(spec: OptimizeSpec, study, *, progress=None) -> FrontierResult:
    """Budget sweep per objective, every candidate kept, frontier and named strategies."""
    evaluator = ScheduleEvaluator(spec, study)
    named = named_strategies(evaluator, spec.strategies)
    budgets = spec.budgets
    if isinstance(budgets, int):
        top = float(np.nanmax(named[spec.cost])) if len(named) else 1.0
        budgets = tuple(np.linspace(0, top, budgets + 1)[1:])
    best = []
    for k, objective in enumerate(spec.objectives):
        for j, budget in enumerate(budgets):
            x, value = search(evaluator, objective, budget, seed=spec.seed + 1000 * k + j)
            best.append({"objective": objective, "budget": budget,
                         **{n: x[i] for i, n in enumerate(evaluator.names)}, "penalized": value})
            if progress:
                progress(objective, budget)
    points = evaluator.history.frame()
    frontier_parts = []
    for objective in spec.objectives:
        y = f"_{objective}_oriented"
        points[y] = evaluator.oriented(objective, points[objective].to_numpy(float))
        named[y] = evaluator.oriented(objective, named[objective].to_numpy(float))
        # the frontier of everything evaluated: the searched schedules and the named strategies
        both = pd.concat([points.assign(kind="candidate"), named.assign(kind="named")], ignore_index=True)
        both = both[np.isfinite(both[spec.cost]) & np.isfinite(both[y])]
        front = both[pareto(both, spec.cost, y)].sort_values(spec.cost)
        points[f"frontier_{objective}"] = points.index.isin(front.index[front.kind == "candidate"])
        named[f"on_frontier_{objective}"] = [
            not ((front[spec.cost] <= c) & (front[y] <= o) & ((front[spec.cost] < c) | (front[y] < o))).any()
            for c, o in zip(named[spec.cost], named[y])]
        frontier_parts.append(front.assign(objective=objective))
    frontier = pd.concat(frontier_parts, ignore_index=True)
    frontier = frontier.drop(columns=[c for c in frontier.columns if c.endswith("_oriented") or c.startswith(("frontier_", "on_frontier_"))])
    named = named.drop(columns=[c for c in named.columns if c.endswith("_oriented")])
    return FrontierResult(points.drop(columns=[c for c in points.columns if c.endswith("_oriented")]), frontier,
                          named, pd.DataFrame(best))
