"""Parameter uncertainty: profile-likelihood intervals and the band they imply (the posterior
is in ``calibration.posterior``).

Why profile likelihood and not the bootstrap: a bootstrap refits the model hundreds of
times (each fit hundreds of runs at 0.1-0.2 s), and with thin series (1-9 points) resampled
data sets are degenerate. The profile needs one constrained search per grid point, is
invariant to how a parameter is scaled, and shows directly when the data do not bound a
parameter: the profile stays below the threshold all the way to a bound.

The profile of parameter ``j`` is ``PL(theta_j) = min over the others of NLL``. The
``level`` interval is ``{theta_j : PL(theta_j) - NLL_min <= chi2_1(level) / 2}`` (1.92 for
95%; Wilks' theorem). The grid walks out from the estimate on each side in adaptive steps of the
(linear or log) range, each search warm-started from the previous point, and the interval
end is interpolated between the grid points bracketing the threshold, linearly in the root
deviance ``sqrt(delta)`` (exact for a quadratic profile). A side on
which the profile never reaches the threshold before the bound is *open*: the interval runs
into the bound and the parameter is flagged as not identified by the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from calibration.fit import FitResult, local_search, parallel_map
from calibration.likelihood import Problem

FIRST_STEP = 0.03  # first step from the estimate, in unit coordinates
MAX_POINTS = 6  # grid points per side at most


def threshold(level: float = 0.95) -> float:
    """The profile-likelihood cut ``chi2_1(level) / 2`` (1.9207 for 95%)."""
    return float(chi2.ppf(level, 1) / 2)


@dataclass
class Profile:
    name: str
    estimate: float
    points: pd.DataFrame  # value, delta (NLL - best), u0..u{p-1}
    lower: float
    upper: float
    lower_open: bool  # True: the interval runs into the lower bound
    upper_open: bool

    @property
    def identified(self) -> bool:
        return not (self.lower_open or self.upper_open)


def _walk(task):
    """Walk from the estimate to one side until the profile passes the cut (or the bound).

    Steps adapt to the curvature seen so far: with ``delta`` at offset ``d``, a quadratic
    profile crosses the cut at ``d * sqrt(cut / delta)``; the next step aims 20% beyond it
    (at least 1.5 and at most 4 times the last offset), so a well-identified parameter needs
    two or three constrained searches per side and a flat one reaches its bound quickly.
    """
    problem, u_best, j, direction, best_nll, cut, maxfev = task
    rows, u = [], np.array(u_best, dtype=float)
    free = [i for i in range(len(u_best)) if i != j]
    room = (1.0 - u_best[j]) if direction > 0 else u_best[j]
    offset = min(FIRST_STEP, room)
    for _ in range(MAX_POINTS):
        if room <= 1e-12:
            break
        target = min(1.0, max(0.0, u_best[j] + direction * offset))
        start = u.copy()
        start[j] = target
        result = local_search(problem, start, free=free, fixed={j: target}, maxiter=maxfev)
        u = result.u
        delta = result.nll - best_nll
        rows.append((target, delta, u.copy()))
        if delta >= cut or offset >= room:
            break
        aim = 1.2 * offset * math.sqrt(cut / delta) if delta > 1e-9 else 4 * offset
        offset = min(room, max(1.5 * offset, min(aim, 4 * offset)))
    return rows


def profile_likelihood(result: FitResult, *, level: float = 0.95, workers: int = 1,
                       maxfev: int = 60, progress: bool = True) -> list[Profile]:
    """Profiles of every fitted parameter around the estimate in ``result``."""
    problem: Problem = result.problem
    cut = threshold(level)
    k = len(problem.params)
    tasks = [(problem, result.u, j, d, result.nll, cut, maxfev) for j in range(k) for d in (-1, 1)]
    walks = parallel_map(_walk, tasks, workers=workers, desc=f"profiles {result.targets.name}",
                         progress=progress)
    profiles = []
    for j, p in enumerate(problem.params):
        down, up = walks[2 * j], walks[2 * j + 1]
        ends, opens = [], []
        for side, walk in (("lower", down), ("upper", up)):
            prev_u, prev_d = result.u[j], 0.0
            end, is_open = None, True
            for uj, delta, _ in walk:
                if delta >= cut:
                    # interpolate the signed root deviance sqrt(2 delta), near-linear in theta
                    r0, r1 = math.sqrt(max(prev_d, 0.0)), math.sqrt(delta)
                    frac = (math.sqrt(cut) - r0) / (r1 - r0) if r1 != r0 else 1.0
                    end, is_open = prev_u + frac * (uj - prev_u), False
                    break
                prev_u, prev_d = uj, delta
            if end is None:
                end = 0.0 if side == "lower" else 1.0
            ends.append(p.from_unit(end))
            opens.append(is_open)
        rows = [{"value": p.from_unit(uj), "delta": delta, **{f"u{i}": x for i, x in enumerate(u)}}
                for walk in (down[::-1], up) for uj, delta, u in walk]
        rows.append({"value": result.params[p.name], "delta": 0.0,
                     **{f"u{i}": x for i, x in enumerate(result.u)}})
        points = pd.DataFrame(rows).sort_values("value").reset_index(drop=True)
        profiles.append(Profile(p.name, result.params[p.name], points, ends[0], ends[1], opens[0], opens[1]))
    return profiles


def parameter_table(result: FitResult, profiles: list[Profile], *, level: float = 0.95) -> pd.DataFrame:
    """One row per parameter: estimate, interval, bounds, flags."""
    rows = []
    for p, prof in zip(result.targets.parameters, profiles):
        lower_text = "open (runs into the lower bound)" if prof.lower_open else ""
        upper_text = "open (runs into the upper bound)" if prof.upper_open else ""
        rows.append({
            "parameter": p.name, "estimate": result.params[p.name], "start": p.start,
            f"ci{int(level * 100)}_lower": prof.lower, f"ci{int(level * 100)}_upper": prof.upper,
            "bound_lower": p.lower, "bound_upper": p.upper, "transform": p.transform,
            "at_bound": result.bounds_hit.get(p.name, ""),
            "identified": prof.identified,
            "note": "; ".join(t for t in (lower_text, upper_text) if t),
            "min_profile_delta": float(prof.points["delta"].min()),
        })
    return pd.DataFrame(rows)


def band_points(profiles: list[Profile], result: FitResult, *, level: float = 0.95) -> list[np.ndarray]:
    """Parameter sets inside the joint profile region (delta <= cut): the band's members."""
    cut = threshold(level)
    k = len(result.u)
    members = [result.u]
    for prof in profiles:
        inside = prof.points[prof.points["delta"] <= cut]
        members += [row[[f"u{i}" for i in range(k)]].to_numpy(dtype=float) for _, row in inside.iterrows()]
    unique = {tuple(np.round(u, 10)): u for u in members}
    return list(unique.values())
