"""The compiled engine: parity with PySD, the same results whatever the tiles and threads,
one kernel per model content, a verified cache, and the numpy engine when there is no compiler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, MODELS, ROOT
from sdloop.engines.numpy_engine import Engine, compare_frames

TOLERANCE = 1e-9
REFERENCE_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.mdl")) + [
    "sir.xmile", "core/goal_lookup.mdl", "calibration/diffusion.mdl", "engine/ishigami.mdl"]


def _compiled(path, **kwargs):
    from sdloop.engines.compiled import CompiledEngine

    return CompiledEngine(path, **kwargs)


def _pysd(path):
    from sdloop.engines.pysd_model import load_model

    return load_model(path)


@pytest.mark.parametrize("name", REFERENCE_FIXTURES)
def test_reference_fixtures_match_pysd(compiler, name):
    path = FIXTURES / name
    assert compare_frames(_compiled(path).run_frame(), _pysd(path).run()) <= TOLERANCE


def test_builtins_under_overrides_other_time_step_and_varying_ramp(compiler):
    """SMOOTH3, DELAY1, DELAY FIXED, TREND, INITIAL, lookups, STEP/RAMP/PULSE, MIN/MAX; the ramp's
    slope as an array makes its Time-dependent term per run instead of once over the grid."""
    path = FIXTURES / "builtins.mdl"
    model, engine = _pysd(path), _compiled(path)
    params = {"birth rate": 0.3, "smoothing time": 1.5, "ramp slope": -2}
    ours = engine.run_frame(params, time_step=0.125, final_time=30)
    assert compare_frames(ours, model.run(params, time_step=0.125, final_time=30)) <= TOLERANCE
    slopes = np.array([-2.0, 0.5, 3.0])
    result = engine.run({**params, "ramp slope": slopes}, time_step=0.125, final_time=30)
    for i, slope in enumerate(slopes):
        reference = model.run({**params, "ramp slope": slope}, time_step=0.125, final_time=30)
        assert compare_frames(result.frame(i), reference) <= TOLERANCE


def test_policy_loop_scenarios_match_pysd(compiler):
    from sdloop.experiments.overrides import load_collection
    from sdloop.experiments.overrides import merge

    model = _pysd(MODELS / "policy_loop.mdl")
    engine = _compiled(MODELS / "policy_loop.mdl")
    entries = {name: merge(model, [entry])
               for name, entry in load_collection(MODELS / "policy_loop_scenarios.toml").items()}
    for name, params in entries.items():
        assert compare_frames(engine.run_frame(params), model.run(params)) <= TOLERANCE, name


def test_sector_strategies_match_pysd_in_one_call(compiler):
    """Every strategy of two cases and scenarios, integrated together (one tile of 16 runs)."""
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    runs = Study(load_project(MODELS / "sector.project.toml", uncalibrated=True)).params
    model = _pysd(MODELS / "sector_lifecycle.mdl")
    keys = [k for k in runs if (k[0], k[1]) in {("nev", "baseline"), ("ic", "export_controls")}]
    engine = _compiled(MODELS / "sector_lifecycle.mdl", threads=2)
    names = sorted({name for k in keys for name in runs[k]})
    arrays = {name: np.array([runs[k].get(name, engine.defaults[name]) for k in keys]) for name in names}
    result = engine.run(arrays, n=len(keys))
    worst = max(compare_frames(result.frame(i), model.run(runs[k])) for i, k in enumerate(keys))
    assert len(keys) == 2 * len({k[2] for k in runs}) and worst <= TOLERANCE


def test_same_numbers_whatever_the_tiles_threads_and_slices(compiler, monkeypatch):
    from sdloop.engines import compiled

    engine = _compiled(MODELS / "sector_lifecycle.mdl")
    n = 3 * engine.kernel.tile + 5  # a partial last tile
    params = {"Spillover Rate": np.linspace(0.05, 0.2, n), "Price Sensitivity": np.linspace(1.5, 5, n)}
    columns = ["Self Sufficiency", "Technological Capability"]
    one = engine.run(params, columns=columns, threads=1)
    assert engine.team == (1, 1)
    two = engine.run(params, columns=columns, threads=2)
    assert engine.team == (1, 1)  # 53 runs: not worth a second thread
    monkeypatch.setattr(compiled, "RUNS_PER_THREAD", 1)
    two = engine.run(params, columns=columns, threads=2)
    assert engine.team[0] == 2  # an OpenMP team of two ran the call
    part = engine.run({k: v[13:15] for k, v in params.items()}, columns=columns, threads=1)
    for column in columns:
        np.testing.assert_array_equal(one[column], two[column])
        np.testing.assert_array_equal(part[column], one[column][:, 13:15])
    numpy_result = Engine(MODELS / "sector_lifecycle.mdl").run(params, columns=columns)
    for column in columns:
        np.testing.assert_allclose(one[column], numpy_result[column], rtol=1e-10)


def test_non_finite_runs_are_flagged(compiler):
    from sdloop.errors import SimulationError

    engine = _compiled(FIXTURES / "exponential_growth.mdl")
    with pytest.raises(SimulationError, match="non-finite"):
        engine.run_frame({"birth fraction": 1e10})
    assert engine.run({"birth fraction": np.array([0.01, 1e10])}).finite.tolist() == [True, False]
    # a run that goes non-finite between saved times, in a column that is not recorded
    result = engine.run({"birth fraction": np.array([0.01, 1e10])}, columns=["birth fraction"])
    assert result.finite.tolist() == [True, False]


def test_generated_source_is_c_with_vector_loops(compiler, capsys):
    from sdloop.cli import main

    assert main(["simulate", str(FIXTURES / "builtins.mdl"), "--engine", "compiled", "--show-code"]) == 0
    source = capsys.readouterr().out
    assert "int sd_run(" in source and "#pragma omp simd" in source
    assert "T->x_population[i] = a_population + dt * (a_births - a_deaths);" in source


def test_cache_entry_is_verified_and_rebuilt_when_damaged(compiler, tmp_path, monkeypatch):
    from sdloop.engines import cbuild
    from sdloop.engines.ccodegen import generate_c
    from sdloop.structure.build import build_structure

    monkeypatch.setenv("SDLOOP_CACHE", str(tmp_path))
    kernel = generate_c(build_structure(FIXTURES / "goal_seeking.mdl"))
    cbuild.load_kernel(kernel)
    (entry,) = tmp_path.glob("kernel-*")
    manifest = json.loads((entry / "manifest.json").read_text())
    library = entry / manifest["library"]
    assert manifest["sha256"] == cbuild.file_sha256(library)
    assert not list(tmp_path.glob(".build-*"))  # built elsewhere and renamed into place
    damaged = library.with_name("damaged")
    damaged.write_bytes(library.read_bytes()[:-16] + b"\0" * 16)
    os.replace(damaged, library)  # a new file: the library this process has loaded stays mapped intact
    assert cbuild._verified_library(entry) is None
    cbuild.load_kernel(kernel)  # rebuilt, not loaded
    assert cbuild._verified_library(entry) is not None


def _hide_cffi(directory: Path) -> str:
    """A directory that, first on PYTHONPATH, makes ``import cffi`` fail as on a venv without it."""
    package = directory / "cffi"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'cffi'\", name='cffi')\n")
    return str(directory)


@pytest.mark.parametrize("hide, engine, why", [("CC", "compiled", "no C compiler found"),
                                               ("PATH", "auto", "no C compiler found"),
                                               ("cffi", "auto", "cffi is not installed")])
def test_without_a_compiler_the_numpy_engine_runs_and_says_so(tmp_path, hide, engine, why):
    """A fresh cache and no compiler (CC naming none, or none on PATH) or no cffi: one line, same numbers."""
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env["SDLOOP_CACHE"] = str(tmp_path / "cache")
    if hide == "CC":
        env["CC"] = str(tmp_path / "no-such-cc")
    elif hide == "PATH":
        env["PATH"] = str(tmp_path)
    else:
        env["PYTHONPATH"] = _hide_cffi(tmp_path / "hidden")
    out = tmp_path / "run.csv"
    done = subprocess.run([sys.executable, "-m", "sdloop.cli", "simulate", str(FIXTURES / "sir.mdl"),
                           "--engine", engine, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and why in lines[0] and "using the numpy engine" in lines[0], lines
    assert not list(Path(env["SDLOOP_CACHE"]).glob("kernel-*"))
    import pandas as pd

    ours = pd.read_csv(out, index_col=0)
    reference = _pysd(FIXTURES / "sir.mdl").run()
    assert compare_frames(ours, reference) <= TOLERANCE


def test_without_cffi_every_compiled_path_falls_back(monkeypatch, capsys):
    """cffi missing (as on a venv without it): load_kernel says so in CompilerUnavailable, the
    engine choice and bench fall back to the numpy engine with one line, no traceback."""
    from sdloop.cli import main
    from sdloop.engines import cbuild, choice, compiled
    from sdloop.engines.ccodegen import generate_c
    from sdloop.structure.build import build_structure

    monkeypatch.setitem(sys.modules, "cffi", None)  # import cffi now raises ImportError
    monkeypatch.setattr(compiled, "_KERNELS", {})
    monkeypatch.setattr(choice, "_CHOICES", {})
    with pytest.raises(cbuild.CompilerUnavailable, match="cffi is not installed"):
        cbuild.load_kernel(generate_c(build_structure(FIXTURES / "sir.mdl")))
    picked = choice.simulator(FIXTURES / "sir.mdl", "auto")
    assert picked.kind == "numpy" and len(picked.notes) == 1 and "cffi is not installed" in picked.notes[0]
    assert "cffi is not installed" in picked.describe()
    assert compare_frames(picked.simulator.run_frame(), _pysd(FIXTURES / "sir.mdl").run()) <= TOLERANCE
    assert main(["bench", "--json", "--models", str(MODELS), "--sizes", "1", "--pysd-runs", "1"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["compiled"].startswith("unavailable: cffi is not installed")
    assert figures["compiled_ms_per_call_64"] is None and figures["max_rel_diff"] <= 1e-9


@pytest.mark.parametrize("name", ["sector_lifecycle.mdl", "policy_loop.mdl"])
def test_step_loop_of_the_bundled_models_is_vectorized(compiler, name, tmp_path):
    """The kernel's speed comes from the compiler vectorizing the step loop across runs; a C
    idiom it cannot if-convert (MIN/MAX written with `||` did, in the sector model) makes that loop
    scalar and the engine 5-10x slower with the same numbers. GCC reports what it vectorized."""
    from sdloop.engines.cbuild import FLAGS
    from sdloop.engines.ccodegen import generate_c
    from sdloop.structure.build import build_structure

    if "gcc" not in compiler.identity.lower() and "GCC" not in compiler.identity:
        pytest.skip(f"the vectorization report is GCC's ({compiler.identity.splitlines()[0]})")
    source = generate_c(build_structure(MODELS / name)).source
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if " void step(" in line) + 1  # 1-based
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}")) + 1
    (tmp_path / "kernel.c").write_text(source)
    report = subprocess.run([*compiler.command, *FLAGS, "-fopt-info-vec-optimized", "-c", "kernel.c",
                             "-o", os.devnull], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    vectorized = {int(line.split(":")[1]) for line in report.stderr.splitlines()
                  if line.startswith("kernel.c:") and "loop vectorized" in line}
    assert any(start < line < end for line in vectorized), report.stderr[-2000:]
