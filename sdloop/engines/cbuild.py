"""Compile a generated C kernel with the system C compiler (through cffi) into the cache.

``load_kernel(kernel)`` returns the loaded cffi module (``module.lib.sd_run``). The build is
keyed by the kernel source (so by the model's content and sdloop's code generator), the
compiler (its path, version and what ``-march=native`` means on this machine), the flags,
cffi and the Python ABI: a model is compiled once per content and compiler. A build is
made in a temporary directory and renamed into place, with a manifest holding the SHA-256
of the library; the hash is checked before every load, and a library that fails it is
rebuilt. ``CompilerUnavailable`` says why nothing could be compiled or loaded (cffi or
setuptools not installed, no compiler, no Python headers, a compiler that fails, a library
that does not load), so that the caller can fall back to the numpy engine.

Flags (``FLAGS``): ``-O3 -march=native`` to vectorize across runs with this CPU's widest
vectors; ``-fopenmp`` for ``#pragma omp simd`` and threads; ``-fno-math-errno`` (exp, log
and pow do not set errno, so the compiler may call glibc's vector math library, libmvec,
from vectorized loops) and ``-fno-trapping-math`` (no floating-point traps are enabled,
so both arms of a condition may be evaluated and blended). Neither changes a computed
value. ``-ffp-contract=off`` keeps a * b + c as two roundings, as numpy computes it. No
``-ffast-math``: no reassociation, reciprocal approximation or NaN assumptions. The one
difference from numpy's arithmetic is libmvec's exp, log and pow (within 4 ulp of the
exact value, against glibc's scalar functions' 1 ulp); parity with PySD stays within
1e-9 (tests and ``sdloop bench`` measure it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sdloop.engines.cache_entries import file_sha256, private_cache
from sdloop.engines.ccodegen import CKernel
from sdloop.engines.pysd_translation import cache_dir

FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off")
LINK_FLAGS = ("-fopenmp",)
LIBRARIES = ("mvec", "m")


class CompilerUnavailable(RuntimeError):
    """No kernel can be compiled here (the reason is the message)."""


@dataclass(frozen=True)
class Compiler:
    """The C compiler cffi will call, and what identifies its output."""

    command: tuple[str, ...]
    path: str
    identity: str  # version line and the target -march=native selects


def compiler_command() -> tuple[str, ...]:
    """``$CC`` if set, else the compiler Python was built with (as distutils chooses)."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return tuple(shlex.split(cc))


@functools.cache
def find_compiler(command: tuple[str, ...] | None = None) -> Compiler:
    """The compiler and its identity (CompilerUnavailable if there is none that runs)."""
    command = command or compiler_command()
    path = shutil.which(command[0]) if command else None
    if path is None:
        raise CompilerUnavailable(f"no C compiler found (CC={' '.join(command) or 'unset'})")
    try:
        version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
        native = subprocess.run([*command, "-march=native", "-E", "-v", "-x", "c", os.devnull, "-o", os.devnull],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompilerUnavailable(f"the C compiler {path} does not run: {exc}") from None
    if version.returncode != 0:
        raise CompilerUnavailable(f"the C compiler {path} does not run: {version.stderr.strip()[:200]}")
    target = [line.strip() for line in native.stderr.splitlines() if "-march=" in line and "cc1" in line]
    identity = version.stdout.splitlines()[0] if version.stdout else path
    return Compiler(command, path, identity + "\n" + (target[0] if target else ""))


def python_headers() -> Path:
    """Python.h, which cffi's extension modules include (CompilerUnavailable when missing)."""
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        raise CompilerUnavailable(f"the Python headers are not installed ({header} is missing; "
                                  "install python3-dev or the like)")
    return header


def require_cffi():
    """The cffi module, and the setuptools its builds use (CompilerUnavailable when missing)."""
    try:
        import cffi
    except ImportError:
        raise CompilerUnavailable("cffi is not installed (pip install cffi)") from None
    if importlib.util.find_spec("setuptools") is None:
        raise CompilerUnavailable("setuptools is not installed (cffi needs it to compile; pip install setuptools)")
    return cffi


def require_prerequisites() -> Compiler:
    """cffi, a C compiler and the Python headers, or CompilerUnavailable naming the first missing."""
    require_cffi()
    compiler = find_compiler()
    python_headers()
    return compiler


def build_key(kernel: CKernel, compiler: Compiler) -> str:
    cffi = require_cffi()

    parts = [kernel.source, kernel.declarations, compiler.path, compiler.identity, " ".join(FLAGS),
             " ".join(LINK_FLAGS), " ".join(LIBRARIES), cffi.__version__, sysconfig.get_config_var("SOABI") or "",
             sys.version]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _verified_library(directory: Path) -> Path | None:
    """The library in a cache entry if its manifest's hash matches, else None."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        library = directory / manifest["library"]
        if file_sha256(library) == manifest["sha256"]:
            return library
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


@contextlib.contextmanager
def _captured_output(log: Path):
    """Send this process's stdout and stderr (the compiler's messages) to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "wb") as handle:
        try:
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _compile(kernel: CKernel, module: str, work: Path, compiler: Compiler) -> Path:
    cffi = require_cffi()
    ffi = cffi.FFI()
    ffi.cdef(kernel.declarations)
    ffi.set_source(module, kernel.source, extra_compile_args=list(FLAGS), extra_link_args=list(LINK_FLAGS),
                   libraries=list(LIBRARIES))
    log = work / "compiler.log"
    env = {"CC": " ".join(compiler.command)}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with _captured_output(log):
            library = Path(ffi.compile(tmpdir=str(work), verbose=False))
    except Exception as exc:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "error" in ln.lower()] if log.exists() else []
        detail = lines[0].strip() if lines else str(exc).splitlines()[0]
        raise CompilerUnavailable(f"the C compiler failed on the kernel: {detail}") from None
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return library


def load_kernel(kernel: CKernel):
    """The compiled kernel as a cffi module (compiled into the cache on first use)."""
    compiler = require_prerequisites()
    key = build_key(kernel, compiler)
    module = f"_sdloop_kernel_{key}"
    root = private_cache(cache_dir())  # ModelFileError when it is not a folder this user can write
    target = root / f"kernel-{key}"
    library = _verified_library(target)
    if library is None:
        if target.exists():  # a damaged or partial entry: set it aside, build afresh
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=root))
            with contextlib.suppress(OSError):
                target.rename(stale / "entry")
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            built = _compile(kernel, module, work, compiler)
            (work / "manifest.json").write_text(json.dumps(
                {"library": built.name, "sha256": file_sha256(built), "compiler": compiler.identity,
                 "flags": list(FLAGS), "libraries": list(LIBRARIES)}, indent=1))
            for path in work.rglob("*.o"):
                path.unlink()
            try:
                work.rename(target)
            except OSError:  # another process built the same kernel meanwhile
                pass
        finally:
            shutil.rmtree(work, ignore_errors=True)
        library = _verified_library(target)
        if library is None:
            raise CompilerUnavailable(f"the compiled kernel in {target} does not match its manifest")
    spec = importlib.util.spec_from_file_location(module, library,
                                                  loader=importlib.machinery.ExtensionFileLoader(module, str(library)))
    try:
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
    except ImportError as exc:  # e.g. a runtime library (libgomp, libmvec) missing where it runs
        raise CompilerUnavailable(f"the compiled kernel does not load: {str(exc).splitlines()[0]}") from None
    return loaded
