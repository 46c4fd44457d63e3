"""Run a folder of models laid out like PySD's test suite (SDXorg/test-models) through sdloop.

Each test folder holds one or more model files (``.mdl``, ``.xmile``, ``.xml``, ``.stmx``) and
the reference output of the tool that wrote them (``output.tab`` or ``output.csv``, one row
per time, or one row per variable: read either way). Every model is run twice, each in its
own process with a time limit:

- ``sdloop simulate MODEL`` (engine ``auto``, or ``--engine``): *right* (every reference
  column within tolerance), *wrong* (the first column off, or a reference column it lacks),
  *refused* (a non-zero exit without a traceback: its last line of standard error), a
  *traceback* (its last line), or a *timeout*;
- plain PySD (``pysd.read_vensim``/``read_xmile(...).run()`` on a copy of the folder, since
  PySD writes its translation next to the model): *right*, *wrong* or *raises*.

Values are compared with PySD's own ``assert_frames_close`` on the reference's columns and
times: ``|ours - reference| <= atol + rtol * |reference|`` (rtol 1e-3, atol 1e-5 by
default). One line per model, then the counts in the layout of issue #9's table.

    python tools/suite.py FOLDER [--engine auto] [--timeout 600] [--tsv FILE]
    make suite SUITE=FOLDER

Exit status 0 when every model was tried, 2 when the folder holds no model with a reference.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

MODEL_SUFFIXES = (".mdl", ".xmile", ".xml", ".stmx")
REFERENCES = ("output.csv", "output.tab")

# Runs plain PySD on one model and writes its output as CSV: argv = model, csv.
PYSD_ALONE = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import pysd
    model, out = sys.argv[1], sys.argv[2]
    warnings.simplefilter("ignore")
    reader = pysd.read_vensim if model.lower().endswith(".mdl") else pysd.read_xmile
    with np.errstate(all="ignore"):
        reader(model).run().to_csv(out)
""")


@dataclass
class Outcome:
    """What one tool did with one model: ``kind`` is right, wrong, refused, traceback, raises or
    timeout; ``detail`` one line saying why (empty when right)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return self.kind + (f": {self.detail}" if self.detail else "")


def models_with_references(folder: Path) -> list[tuple[Path, Path]]:
    """Every model file under ``folder`` whose own folder holds a reference output."""
    found = []
    for model in sorted(folder.rglob("*")):
        if model.suffix.lower() not in MODEL_SUFFIXES or not model.is_file():
            continue
        reference = next((model.parent / r for r in REFERENCES if (model.parent / r).is_file()), None)
        if reference is not None:
            found.append((model, reference))
    return found


def load_reference(path: Path):
    """The reference output indexed by time; a file with one row per variable (its header row
    the times) is transposed."""
    from pysd.tools.benchmarking import load_outputs

    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().replace('"', "").split("\t" if path.suffix.lower() == ".tab" else ",")
    try:
        float(header[1])
        transpose = True
    except (IndexError, ValueError):
        transpose = header[0].strip().lower() != "time"
    return load_outputs(path, transpose=transpose, encoding="utf-8")


def _key(name: str) -> str:
    """A column name as Vensim and PySD may each spell it: case, quotes, spaces, underscores."""
    return "".join(name.replace('"', "").replace("_", " ").lower().split())


def compare(ours, reference, rtol: float, atol: float) -> Outcome:
    """Right when every reference column is in ``ours`` and close at every reference time."""
    import numpy as np
    from pysd.tools.benchmarking import assert_frames_close

    by_key = {_key(str(c)): c for c in ours.columns}
    wanted = [c for c in reference.columns if _key(str(c)) != "time"]
    missing = [c for c in wanted if _key(str(c)) not in by_key]
    if missing:
        return Outcome("wrong", f"{len(missing)} reference column(s) missing, e.g. '{missing[0]}'")
    times = np.asarray(ours.index, dtype=float)
    rows = [int(np.argmin(np.abs(times - t))) for t in reference.index]
    if not len(rows) or np.max(np.abs(times[rows] - np.asarray(reference.index, dtype=float))) > 1e-9 * max(
            1.0, float(np.max(np.abs(reference.index)))):
        return Outcome("wrong", "the reference's times are not all in the output")
    actual = ours.iloc[rows][[by_key[_key(str(c))] for c in wanted]]
    actual.columns, actual.index = wanted, reference.index
    expected = reference[wanted].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        columns, when, first = assert_frames_close(actual.astype(float), expected, assertion="return",
                                                   rtol=rtol, atol=atol)
    if not columns:
        return Outcome("right")
    name = sorted(first)[0]
    row = list(reference.index).index(when)
    return Outcome("wrong", f"{len(columns)} column(s) off, first '{name}' at time {when:g}: "
                            f"{actual[name].iloc[row]:.6g} against {expected[name].iloc[row]:.6g}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"


def _run(command: list[str], timeout: float, cwd: Path) -> tuple[int | None, str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr


def run_sdloop(model: Path, reference, engine: str, timeout: float, scratch: Path,
               rtol: float, atol: float) -> Outcome:
    """``sdloop simulate MODEL --engine ENGINE --out CSV`` in its own process, then compared."""
    import pandas as pd

    out = scratch / "sdloop.csv"
    status, err = _run([sys.executable, "-m", "sdloop.cli", "simulate", str(model), "--engine", engine,
                        "--out", str(out)], timeout, scratch)
    if status is None:
        return Outcome("timeout", f"more than {timeout:g} s")
    if "Traceback (most recent call last)" in err:
        return Outcome("traceback", _last_line(err))
    if status != 0:
        return Outcome("refused", _last_line(err))
    return compare(pd.read_csv(out, index_col=0), reference, rtol, atol)


def run_pysd_alone(model: Path, reference, timeout: float, scratch: Path, rtol: float, atol: float) -> Outcome:
    """Plain PySD on a copy of the model's folder (its translation is written next to the model)."""
    import pandas as pd

    copy = scratch / "pysd"
    shutil.copytree(model.parent, copy)
    out = scratch / "pysd.csv"
    status, err = _run([sys.executable, "-c", PYSD_ALONE, str(copy / model.name), str(out)], timeout, scratch)
    if status is None:
        return Outcome("timeout", f"more than {timeout:g} s")
    if status != 0:
        return Outcome("raises", _last_line(err))
    return compare(pd.read_csv(out, index_col=0), reference, rtol, atol)


def summary(rows: list[tuple[str, Outcome, Outcome | None]]) -> list[str]:
    """Counts per outcome for sdloop and plain PySD, and the models each runs right alone."""
    ours = collections.Counter(o.kind for _, o, _ in rows)
    lines = [f"{len(rows)} models: sdloop simulate " + ", ".join(f"{n} {k}" for k, n in sorted(ours.items()))]
    if all(p is not None for _, _, p in rows):
        theirs = collections.Counter(p.kind for _, _, p in rows)
        lines.append(f"{len(rows)} models: plain PySD " + ", ".join(f"{n} {k}" for k, n in sorted(theirs.items())))
        lost = [m for m, o, p in rows if p.kind == "right" and o.kind != "right"]
        gained = [m for m, o, p in rows if o.kind == "right" and p.kind != "right"]
        lines.append(f"PySD right but sdloop not: {len(lost)}" + (f" ({', '.join(lost)})" if lost else ""))
        lines.append(f"sdloop right but PySD not: {len(gained)}" + (f" ({', '.join(gained)})" if gained else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder of test folders (model + output.tab/output.csv)")
    parser.add_argument("--engine", default="auto", choices=["auto", "compiled", "numpy", "pysd"])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model and tool")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--no-pysd", action="store_true", help="leave out the plain-PySD column")
    parser.add_argument("--tsv", type=Path, help="also write the table as tab-separated values")
    args = parser.parse_args(argv)
    found = models_with_references(args.folder)
    if not found:
        print(f"{args.folder}: no model file next to an output.tab or output.csv", file=sys.stderr)
        return 2
    rows: list[tuple[str, Outcome, Outcome | None]] = []
    for model, reference_file in found:
        model = model.resolve()
        name = str(model.relative_to(args.folder.resolve()))
        with tempfile.TemporaryDirectory(prefix="sdloop-suite-") as tmp:
            scratch = Path(tmp)
            try:
                reference = load_reference(reference_file)
            except Exception as exc:  # noqa: BLE001 - a reference we cannot read is reported, not fatal
                print(f"{name}\tunreadable reference {reference_file.name}: {exc}")
                continue
            ours = run_sdloop(model, reference, args.engine, args.timeout, scratch, args.rtol, args.atol)
            theirs = None if args.no_pysd else run_pysd_alone(model, reference, args.timeout, scratch,
                                                                args.rtol, args.atol)
        rows.append((name, ours, theirs))
        print(f"{name}\t{ours}" + ("" if theirs is None else f"\tPySD alone: {theirs}"), flush=True)
    for line in summary(rows):
        print(line)
    if args.tsv:
        with open(args.tsv, "w", encoding="utf-8") as f:
            f.write("model\tsdloop\tsdloop detail\tpysd\tpysd detail\n")
            for name, ours, theirs in rows:
                f.write(f"{name}\t{ours.kind}\t{ours.detail}\t{theirs.kind if theirs else ''}\t"
                        f"{theirs.detail if theirs else ''}\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
