"""`sdloop bench --json` reports the agreed keys (timings are reported, never asserted)."""

from __future__ import annotations

import json

from conftest import MODELS


def test_bench_json_keys(capsys):
    from sdloop.cli import main

    assert main(["bench", "--json", "--models", str(MODELS), "--sizes", "1,200", "--pysd-runs", "2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("pysd_ms_per_run", "engine_us_per_run", "speedup_10000", "max_rel_diff", "peak_memory_mb",
                "engine_ms_per_call_64", "compiled", "compiled_us_per_run", "compiled_speedup_over_numpy_10000",
                "compiled_threads_speedup_10000", "compiled_ms_per_call_64", "compiled_max_rel_diff",
                "load_average"):
        assert key in figures
    assert set(figures["engine_us_per_run"]) == {"1", "200"}
    assert figures["speedup_10000"] is None  # N = 10,000 not measured in this short run
    assert figures["compiled_speedup_over_numpy_10000"] is None
    assert figures["max_rel_diff"] <= 1e-9
    if figures["compiled"] == "available":
        assert set(figures["compiled_us_per_run"]) == {"1", "200"}
        assert figures["compiled_max_rel_diff"] <= 1e-9
        assert figures["compiled_ms_per_call_64"] > 0
    else:
        assert figures["compiled_max_rel_diff"] is None
