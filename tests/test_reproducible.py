"""The same seed gives byte-identical files (issue #10 item 5, #16 item 5): `run` twice, and
`ensemble` in this process and with two worker processes over several chunks (rows are ordered
by chunk index, not by which chunk finished first). The dask cluster is in test_ensemble_dask."""

from __future__ import annotations

from pathlib import Path

from sdloop.cli.main import main
from test_no_lost_results import project


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


def test_ensemble_csvs_are_byte_identical_in_process_and_with_workers(tmp_path):
    path = project(tmp_path)
    common = ["ensemble", str(path), "-n", "12", "--chunk", "3", "--seed", "7", "--no-figures", "--sobol", "0"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b")]) == 0
    assert main(common + ["--out", str(tmp_path / "w"), "--workers", "2"]) == 0
    first = files(tmp_path / "a")
    assert "robustness.csv" in first
    assert files(tmp_path / "b") == first
    assert files(tmp_path / "w") == first


def test_run_twice_gives_byte_identical_csvs(tmp_path):
    path = project(tmp_path)
    for name in ("r1", "r2"):
        assert main(["run", str(path), "--results", str(tmp_path / name), "--no-cache", "-n", "6"]) == 0
    first, second = files(tmp_path / "r1" / "latest"), files(tmp_path / "r2" / "latest")
    assert first and first == second
