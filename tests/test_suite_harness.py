"""tools/suite.py, the harness for a folder laid out like PySD's test suite: on models whose
reference outputs come from their known Euler solutions (tests/fixtures/suite/references.py),
it says right for sdloop and for plain PySD, wrong for a reference a percent off, refused (with
sdloop's one line) where sdloop refuses and PySD raises, and reads references with one row per
time or one row per variable."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import subprocess
import sys

import pandas as pd

from conftest import FIXTURES, ROOT

SUITE = FIXTURES / "suite"


def _references_module():
    spec = importlib.util.spec_from_file_location("suite_references", SUITE / "references.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_references_are_the_known_solutions(tmp_path):
    for folder in SUITE.iterdir():
        if folder.is_dir():
            (tmp_path / folder.name).mkdir()
    _references_module().write(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("output.*"))
    assert len(written) == 4
    for name in written:
        assert (tmp_path / name).read_text() == (SUITE / name).read_text(), name


def test_the_harness_tells_right_wrong_and_refused(tmp_path):
    folder = tmp_path / "suite"
    shutil.copytree(SUITE, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    wrong = folder / "wrong_reference"
    shutil.copytree(SUITE / "exponential_growth", wrong)
    reference = pd.read_table(wrong / "output.tab", index_col=0)
    reference["Population"] *= 1.01  # one percent off: beyond rtol 1e-3
    reference.to_csv(wrong / "output.tab", sep="\t")
    refused = folder / "npv"
    refused.mkdir()
    shutil.copy(FIXTURES / "corpus" / "npv.mdl", refused)
    (refused / "output.tab").write_text("Time\tInventory\n0\t20\n1\t20\n")
    table = tmp_path / "table.tsv"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "suite.py"), str(folder), "--tsv", str(table)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {r["model"]: r for r in csv.DictReader(table.open(), delimiter="\t")}
    for model in ("exponential_growth/exponential_growth.mdl", "teacup_xmile/teacup.xmile",
                  "smooth_step/smooth_step.mdl", "arrayed_decay/arrayed_decay.mdl"):
        assert (rows[model]["sdloop"], rows[model]["pysd"]) == ("right", "right"), rows[model]
    off = rows["wrong_reference/exponential_growth.mdl"]
    assert (off["sdloop"], off["pysd"]) == ("wrong", "wrong"), off
    assert "'Population' at time 0: 100 against 101" in off["sdloop detail"]
    npv = rows["npv/npv.mdl"]
    assert npv["sdloop"] == "refused" and "NPV" in npv["sdloop detail"] and "npv.mdl:14:" in npv["sdloop detail"]
    assert npv["pysd"] == "raises"
    assert "6 models: sdloop simulate 1 refused, 4 right, 1 wrong" in done.stdout
    assert "PySD right but sdloop not: 0" in done.stdout


def test_an_empty_folder_is_unusable_input(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "suite.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no model file" in done.stderr
