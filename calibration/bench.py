"""Calibration speed, measured (``make bench`` runs it after ``sdloop bench``).

For each bundled case: the wall time of the maximum-likelihood fit exactly as ``sdloop
calibrate`` runs it (differential evolution starts in parallel processes, each polished), and
of a posterior of 10,000 draws after burn-in (emcee, vectorized walkers), with the smallest
effective sample size over the parameters. One process, the same machine, one after the
other; the engine and the generated code are warmed up (compiled) before timing. Both wall
time and CPU time (this process plus its worker processes) are reported: on a shared machine
the wall time depends on what else runs, the CPU time much less.

    python -m calibration.bench [--cases national,nev,ic] [--draws 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent
CASES = ("national", "nev", "ic")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_case(case: str, *, draws: int = 10_000, seed: int = 1, workers: int = 2) -> dict:
    from calibration.fit import fit, make_problem
    from calibration.posterior import sample
    from calibration.targets import load_targets

    targets = load_targets(PACKAGE / "targets" / f"{case}.toml")
    problem, note = make_problem(targets)
    problem.nll(np.atleast_2d(problem.start))  # compile the generated code
    began, cpu = time.perf_counter(), _cpu()
    result = fit(None, problem.targets, rng=np.random.default_rng(seed), starts=2, progress=False, problem=problem,
                 workers=workers)
    fit_s, fit_cpu = time.perf_counter() - began, _cpu() - cpu
    cpu = _cpu()
    post = sample(problem, result.u, rng=np.random.default_rng(seed + 1), draws=draws, progress=False)
    post_cpu = _cpu() - cpu
    return {"case": case, "parameters": len(problem.params), "engine": result.engine,
            "fit_seconds": round(fit_s, 2), "fit_cpu_seconds": round(fit_cpu, 2), "fit_runs": result.evaluations,
            "fit_converged": result.converged, "posterior_seconds": round(post.seconds, 2),
            "posterior_cpu_seconds": round(post_cpu, 2), "posterior_draws": len(post.draws),
            "walkers": post.walkers, "burn_in_steps": post.burn,
            "min_ess": round(min(post.ess.values()), 1), "max_rhat": round(max(post.rhat.values()), 4),
            "acceptance": round(post.acceptance, 3), "posterior_converged": post.reliable}


def format_report(rows: list[dict]) -> str:
    import os

    lines = [f"calibration bench (ML fit: 2 differential-evolution starts in parallel + polish; posterior: "
             f"emcee, draws after burn-in; load average at the end {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} cores)"]
    for r in rows:
        lines.append(f"  {r['case']:<9} {r['parameters']:>2} parameters: ML fit {r['fit_seconds']:6.1f} s wall, "
                     f"{r['fit_cpu_seconds']:.1f} s CPU ({r['fit_runs']:,} runs"
                     f"{'' if r['fit_converged'] else ', NOT converged'}); posterior "
                     f"{r['posterior_draws']:,} draws in {r['posterior_seconds']:6.1f} s wall, "
                     f"{r['posterior_cpu_seconds']:.1f} s CPU, min ESS "
                     f"{r['min_ess']:,.0f}, max R-hat {r['max_rhat']:.3f}"
                     + ("" if r["posterior_converged"] else " (NOT converged)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [bench_case(c.strip(), draws=args.draws) for c in args.cases.split(",") if c.strip()]
    print(json.dumps(rows, indent=2) if args.json else format_report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
