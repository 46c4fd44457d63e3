"""The posterior: emcee's ensemble sampler with vectorized walkers on the fast engine.

Target density: the likelihood of ``calibration.likelihood`` (group scales marginalized under
a Jeffreys prior, AR(1) coefficients profiled) times a prior uniform on each parameter's
search scale within its bounds (linear or log, as the target says) times any Gaussian prior
the target states. Walkers start in a small ball around the maximum-likelihood estimate;
each emcee step evaluates half the walkers in one engine call (``vectorize=True``).

Convergence is reported, not assumed: the integrated autocorrelation time ``tau`` of each
parameter (emcee's estimator), the effective sample size ``draws / tau``, the mean acceptance
fraction, and the split potential scale reduction R-hat (Gelman-Rubin on the walkers split
into two groups, each cut into time halves: four chains), which is near 1 when the chains
agree. The sample is called converged when the burn-in spans 5 tau, every ESS is at least
200 and every R-hat is under 1.05. emcee's authors advise chains of 50 tau for a precise
tau; with 10,000 draws over many walkers the kept chain is shorter, so tau (and the ESS
from it) is an estimate, reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration.likelihood import PENALTY, Problem, as_measured

BURN_TAUS = 5  # burn-in steps at least this many autocorrelation times
MIN_ESS = 200  # effective draws per parameter at least
MAX_RHAT = 1.05


@dataclass
class Posterior:
    draws: pd.DataFrame  # natural units, one column per parameter, plus log_prob, walker, step
    unit_draws: np.ndarray  # (draws, p) in unit coordinates
    acceptance: float
    tau: dict[str, float]
    ess: dict[str, float]
    rhat: dict[str, float]
    walkers: int
    steps: int
    burn: int
    seconds: float = 0.0

    @property
    def reliable(self) -> bool:
        """Every parameter: burn-in of at least ``BURN_TAUS`` autocorrelation times, effective
        sample size at least ``MIN_ESS`` and split R-hat under ``MAX_RHAT``."""
        return all(math.isfinite(t) and self.burn >= BURN_TAUS * t for t in self.tau.values()) and \
            all(e >= MIN_ESS for e in self.ess.values()) and all(r < MAX_RHAT for r in self.rhat.values())

    def summary(self) -> pd.DataFrame:
        names = [c for c in self.draws.columns if c not in ("log_prob", "walker", "step")]
        rows = []
        for name in names:
            x = self.draws[name].to_numpy()
            rows.append({"parameter": name, "mean": float(np.mean(x)), "sd": float(np.std(x)),
                         "q2.5": float(np.quantile(x, 0.025)), "median": float(np.median(x)),
                         "q97.5": float(np.quantile(x, 0.975)), "tau": self.tau[name], "ess": self.ess[name],
                         "rhat": self.rhat[name]})
        return pd.DataFrame(rows)


def split_rhat(chain: np.ndarray, groups: int = 2) -> np.ndarray:
    """Split R-hat per parameter: walkers cut into ``groups`` sets, each set's pooled chain cut
    in time halves, giving ``2 * groups`` chains (Gelman et al. 2013, BDA3 section 11.4)."""
    steps, walkers, p = chain.shape
    half = steps // 2
    chains = []
    for g in np.array_split(np.arange(walkers), groups):
        for part in (chain[:half, g, :], chain[half:2 * half, g, :]):
            chains.append(part.reshape(-1, p))
    x = np.stack(chains)  # (m, n, p)
    m, n = x.shape[0], x.shape[1]
    means = x.mean(axis=1)
    b = n * means.var(axis=0, ddof=1)
    w = x.var(axis=1, ddof=1).mean(axis=0)
    var = (n - 1) / n * w + b / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(np.where(w > 0, var / w, 1.0))


def sample(problem: Problem, u_best: np.ndarray, *, rng: np.random.Generator, draws: int = 10_000,
           walkers: int | None = None, burn: int = 250, progress: bool = True) -> Posterior:
    """At least ``draws`` posterior draws after ``burn`` steps, with convergence diagnostics."""
    import time

    import emcee

    began = time.perf_counter()
    p = len(u_best)
    walkers = walkers or max(64, 8 * p)
    walkers += walkers % 2
    kept = math.ceil(draws / walkers)
    steps = burn + kept

    def log_prob(U):
        U = np.atleast_2d(U)
        inside = np.all((U >= 0) & (U <= 1), axis=1)
        out = np.full(len(U), -np.inf)
        if inside.any():
            values = problem.nll(U[inside])
            out[inside] = np.where(values < PENALTY, -values, -np.inf)
        return out

    start = np.clip(u_best[None, :] + 1e-3 * rng.standard_normal((walkers, p)), 0.0, 1.0)
    sampler = emcee.EnsembleSampler(walkers, p, log_prob, vectorize=True)
    sampler._random = np.random.RandomState(int(rng.integers(2 ** 32 - 1)))
    sampler.run_mcmc(start, steps, progress=progress, progress_kwargs={"leave": False,
                                                                         "desc": f"posterior {problem.targets.name}"})
    chain = sampler.get_chain(discard=burn)  # (kept, walkers, p)
    logp = sampler.get_log_prob(discard=burn)
    names = [q.name for q in problem.params]
    tau = emcee.autocorr.integrated_time(chain, tol=0, quiet=True)
    total = chain.shape[0] * chain.shape[1]
    flat = chain.reshape(-1, p)
    natural = problem.natural_arrays(flat)
    frame = pd.DataFrame(natural)
    frame["log_prob"] = logp.reshape(-1)
    frame["step"] = np.repeat(np.arange(burn, steps), walkers)
    frame["walker"] = np.tile(np.arange(walkers), chain.shape[0])
    rhat = split_rhat(chain)
    return Posterior(frame, flat, float(np.mean(sampler.acceptance_fraction)),
                     {n: float(t) for n, t in zip(names, tau)},
                     {n: float(total / t) if t > 0 else float(total) for n, t in zip(names, tau)},
                     {n: float(r) for n, r in zip(names, rhat)}, walkers, steps, burn,
                     time.perf_counter() - began)


def predictive_bands(problem: Problem, post: Posterior, *, rng: np.random.Generator, n: int = 400,
                     level: float = 0.95) -> dict[str, pd.DataFrame]:
    """Per series: the trajectory band of ``n`` posterior draws (parameter uncertainty) and the
    posterior predictive band (draws plus observation noise at each draw's sigma), on the
    saved time grid in data units."""
    pick = rng.choice(len(post.unit_draws), size=min(n, len(post.unit_draws)), replace=False)
    U = post.unit_draws[np.sort(pick)]
    batch = problem.run(U)
    ev = problem.evaluate(U, batch)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    bands = {}
    for sd in problem.series:
        s = sd.target
        k = ev.scale[s.name][:, None]
        traj = as_measured(s, batch.times, batch.values[s.variable]).T * k  # (n, times)
        sigma = ev.sigma.get(s.name, np.zeros(len(U)))[:, None]
        noise = rng.standard_normal(traj.shape) * sigma
        with np.errstate(all="ignore"):
            noisy = traj * np.exp(noise) if s.error == "log" else traj + noise
        good = ev.ok & np.all(np.isfinite(traj), axis=1)
        bands[s.name] = pd.DataFrame({
            "time": batch.times, "median": np.median(traj[good], axis=0),
            "param_lo": np.quantile(traj[good], lo, axis=0), "param_hi": np.quantile(traj[good], hi, axis=0),
            "pred_lo": np.quantile(noisy[good], lo, axis=0), "pred_hi": np.quantile(noisy[good], hi, axis=0)})
    return bands
