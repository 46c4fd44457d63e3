"""``sdloop compare RUN_A RUN_B [--out DIR]``: what changed between two runs and what it did.

Writes a small report directory (``compare.md``, ``changes.diff``, ``parameters.csv``,
``metric_deltas.csv``/``.tex``, ``trajectory_changes.csv``, ``changed_trajectories.pdf``/``.png``)
under ``--results`` (a new directory) or into ``--out``, and prints the summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdloop.cli import options


def add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two run directories: files, parameters, metrics, trajectories",
                       description="What changed between run A and run B (model and input text, parameters, code "
                                   "version) and what it did (metric deltas, the trajectories that moved most).")
    p.add_argument("run_a", type=Path, help="run directory A (the reference)")
    p.add_argument("run_b", type=Path, help="run directory B")
    p.add_argument("--out", type=Path, help="write the report here (default: a new directory under --results)")
    p.add_argument("--results", type=Path, default=Path("results"), help="where report directories go")
    p.add_argument("--top", type=options.positive_int, default=4, help="variables drawn (default: %(default)s)")
    p.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from sdloop.report.compare import RunInfo, compare_runs

    a, b = RunInfo.read(args.run_a), RunInfo.read(args.run_b)  # both readable before anything is written
    if args.out:
        lines = compare_runs(a.path, b.path, args.out, top=args.top)
        where = args.out
    else:
        where = _fresh(args.results, f"compare-{a.path.name}-vs-{b.path.name}",
                       lambda out: compare_runs(a.path, b.path, out, top=args.top))
        lines = (where / "compare.md").read_text(encoding="utf-8").splitlines()
    print("\n".join(lines))
    print(f"Comparison written to {where}")
    return 0


def _fresh(results: Path, name: str, write) -> Path:
    """``write(folder)`` into a hidden folder renamed to ``results/name`` (``-2``, ... if taken) when complete
    (``results/latest`` keeps pointing at the newest run)."""
    import os
    import shutil
    import tempfile

    from sdloop.report.output import publish_mode

    results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".incomplete-", dir=results))
    try:
        write(work)
        publish_mode(work, directory=True)
        final, counter = results / name, 1
        while True:
            try:
                os.rename(work, final)
                return final
            except OSError:
                counter += 1
                final = results / f"{name}-{counter}"
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

