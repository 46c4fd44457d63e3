"""The compiled engine: the model's C kernel, vectorized across runs and parallel across cores.

``CompiledEngine(path)`` is an ``Engine`` (same names, checks, time grid and results) whose
runs go through one C kernel generated from the model structure (``sdloop.engines.ccodegen``)
and compiled once per model content and compiler (``sdloop.engines.cbuild``). Each call is
one C call: every constant a number for all runs or N values, any recorded columns, and
``threads`` OpenMP threads (default: the cores this process may use).

``load_engine(model)`` is the one place that chooses: the compiled engine when the model's
kernel compiles, else the numpy engine, with one line on stderr saying why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sdloop.engines.cbuild import CompilerUnavailable, load_kernel
from sdloop.engines.ccodegen import CodegenError, generate_c
from sdloop.engines.numpy_engine import Engine, EngineResult
from sdloop.errors import SdloopError
from sdloop.structure.build import ModelStructure, build_structure

_KERNELS: dict[str, object] = {}  # kernel source -> loaded module (one load per process)
RUNS_PER_THREAD = 512  # a call with fewer runs per thread runs on fewer threads (see threads_for)
_OPENMP_PID: int | None = None  # the process whose OpenMP thread pool exists (fork does not copy it)


def threads_for(n: int, threads: int) -> int:
    """Threads worth using for ``n`` runs: one per ``RUNS_PER_THREAD`` runs (a small batch's work
    is shorter than waking a team of threads on a busy machine), and one in a process forked
    from one that ran OpenMP threads (GNU OpenMP's thread pool does not survive a fork)."""
    global _OPENMP_PID
    threads = max(1, min(int(threads), -(-n // RUNS_PER_THREAD)))
    if threads > 1:
        if _OPENMP_PID is not None and _OPENMP_PID != os.getpid():
            return 1
        _OPENMP_PID = os.getpid()
    return threads


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class CompiledEngine(Engine):
    """A model compiled to C; ``run`` takes the same arguments as ``Engine.run`` (and ``threads``)."""

    kind = "compiled"

    def __init__(self, model: str | Path | ModelStructure, *, threads: int | None = None) -> None:
        super().__init__(model)
        self.kernel = generate_c(self.structure)
        if self.kernel.source not in _KERNELS:
            _KERNELS[self.kernel.source] = load_kernel(self.kernel)
        module = _KERNELS[self.kernel.source]
        self._ffi, self._lib = module.ffi, module.lib
        self.threads = threads or available_cores()
        self._variable = {name: i for i, name in enumerate(self.kernel.recordable)}
        self._save_rows: dict[int, np.ndarray] = {}
        self.team = (0, 0)  # the last call's OpenMP team size and threads that ran tiles

    def source(self, varying: Sequence[str] = (), columns: Sequence[str] | None = None) -> str:
        """The generated C source (one kernel serves every call)."""
        return self.kernel.source

    def run(self, params: Mapping[str, object] | None = None, *, n: int | None = None,
            columns: Sequence[str] | None = None, final_time: float | None = None,
            time_step: float | None = None, saveper: float | None = None, block_size: int | None = None,
            threads: int | None = None) -> EngineResult:
        """Integrate N runs in one kernel call (``block_size`` is accepted and has no effect);
        ``threads`` (default: the engine's) is capped by ``threads_for``."""
        call = self.inputs(params, n, columns, final_time, time_step, saveper)
        ffi, n = self._ffi, call.n
        times = np.ascontiguousarray(call.times, dtype=float)
        save_row = self._save_rows.get(id(call.saved))
        if save_row is None or len(save_row) != len(times):
            save_row = np.full(len(times), -1, dtype=np.intc)
            save_row[call.saved] = np.arange(len(call.saved), dtype=np.intc)
            self._save_rows[id(call.saved)] = save_row
        cval = np.empty(len(self.kernel.constants))
        carr = ffi.new("double *[]", len(self.kernel.constants))
        keep = []
        for k, name in enumerate(self.kernel.constants):
            value = call.constants[name]
            if isinstance(value, np.ndarray):
                arr = np.ascontiguousarray(value, dtype=float)
                keep.append(arr)
                carr[k] = ffi.cast("double *", ffi.from_buffer(arr))
                cval[k] = np.nan
            else:
                cval[k] = value
        out = {name: np.empty((len(call.saved), n)) for name in call.recorded}
        rec_var = np.array([self._variable[name] for name in call.recorded], dtype=np.intc)
        rec_out = ffi.new("double *[]", [ffi.cast("double *", ffi.from_buffer(a)) for a in out.values()])
        finite = np.zeros(n, dtype=np.uint8)
        step = float(call.control["time step"])
        team = ffi.new("int[2]")
        status = self._lib.sd_run(
            n, len(times) - 1, ffi.cast("double *", ffi.from_buffer(times)), step,
            ffi.cast("int *", ffi.from_buffer(save_row)), ffi.cast("double *", ffi.from_buffer(cval)), carr,
            len(rec_var), ffi.cast("int *", ffi.from_buffer(rec_var)), rec_out,
            ffi.cast("unsigned char *", ffi.from_buffer(finite)), threads_for(n, threads or self.threads), team)
        del keep
        self.team = (team[0], team[1])
        if status != 0:
            raise MemoryError("the compiled kernel ran out of memory")
        return EngineResult(call.rounded, out, n, finite.astype(bool))


def load_engine(model: str | Path | ModelStructure, *, backend: str = "auto", threads: int | None = None,
                notice=None) -> Engine:
    """The fastest engine for ``model``: compiled when ``backend`` is 'auto' or 'compiled' and
    the kernel compiles here, else the numpy engine (``backend='numpy'``, or a fallback that
    ``notice`` reports in one line, such as "cffi is not installed (pip install cffi); using
    the numpy engine"; default: printed to stderr after "sdloop: "). ModelFileError when
    neither engine can run the model (the caller falls back to PySD)."""
    structure = model if isinstance(model, ModelStructure) else build_structure(model)
    if backend == "numpy":
        return Engine(structure)
    try:
        return CompiledEngine(structure, threads=threads)
    except (CompilerUnavailable, CodegenError) as exc:
        reason = str(exc)
    except (SdloopError, MemoryError):
        raise
    except Exception as exc:  # a limit of the C code generator: the numpy engine still runs the model
        reason = f"the C code generator failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    engine = Engine(structure)
    say = notice or (lambda line: print(f"sdloop: {line}", file=sys.stderr))
    say(f"{reason}; using the numpy engine")
    return engine
