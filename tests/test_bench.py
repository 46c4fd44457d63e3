"""`sdloop bench --json` reports the agreed keys (timings are reported, never asserted)."""

from __future__ import annotations

import json

from conftest import MODELS


def test_bench_json_keys(capsys):
    from sdloop.cli import main

    assert main(["bench", "--json", "--models", str(MODELS), "--sizes", "1,200", "--pysd-runs", "2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("pysd_ms_per_run", "engine_us_per_run", "speedup_10000", "max_rel_diff", "peak_memory_mb"):
        assert key in figures
    assert set(figures["engine_us_per_run"]) == {"1", "200"}
    assert figures["speedup_10000"] is None  # N = 10,000 not measured in this short run
    assert figures["max_rel_diff"] <= 1e-9
