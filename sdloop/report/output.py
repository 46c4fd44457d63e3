"""Writing results: atomic files, one directory per run, and the run manifest.

Every file is written under a temporary name and renamed, and a run directory is built
under a hidden temporary name and renamed into place when complete, so a failed run
leaves nothing half-written and never touches an earlier run.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import pandas as pd

from sdloop.errors import raise_if_terminated


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path, *, directory: bool = False) -> None:
    """Give a temporary file or directory the permissions a normal one would have."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return path


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` when the block ends without
    an error, removed otherwise."""
    path = Path(path)
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and Ctrl-C wait until the block ends, then act (``Terminated`` / ``KeyboardInterrupt``).

    For library calls that must not be interrupted half-way: an exception raised inside
    netCDF4/HDF5's write while xarray holds its (non-reentrant) lock left the clean-up waiting
    for that lock for ever."""
    import signal
    import threading

    from sdloop.errors import Terminated, note_termination

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    wanted = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signal.SIGTERM in received:
        note_termination()
        raise Terminated()
    if received:
        raise KeyboardInterrupt()


def check_replaceable(path: Path) -> None:
    """Refuse (OutputError, exit 2) to replace anything but a regular file: a rename over a
    symbolic link, a named pipe or a device (``--out /dev/null`` as root) would replace it."""
    import stat

    from sdloop.errors import OutputError

    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # the write itself reports it
    if not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else
                "a named pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise OutputError(f"{path} is {kind}: sdloop writes a new file whole and renames it into place, so it "
                          "only replaces regular files; choose another output path (nothing was written)")


def inside(root: str | Path, relative: str | Path) -> Path:
    """``root / relative``, refused (OutputError, exit 2) unless it lies inside ``root`` once resolved.

    Every file name built from a name in a project, TOML or model file goes through here, so no
    name (``x/../../elsewhere``, an absolute path, a symbolic link) can make sdloop write elsewhere.
    """
    from sdloop.errors import OutputError

    root = Path(root)
    path = root / relative
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(root.resolve()):
        raise OutputError(f"refused to write {relative}: it would lie outside {root} (a name in the project, "
                          "a TOML file or the model leads out of the output folder)")
    return path


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    """Write a DataFrame as CSV, atomically."""
    return atomic_write_text(path, frame.to_csv(**kwargs))


INCOMPLETE = ".incomplete-"  # + "<pid>-" + random: a folder being written by process <pid>
OUTPUT_MARK = ".sdloop-output"  # in every folder written whole by ``replaced_dir``


def _work_dir(parent: Path, label: str = "") -> Path:
    """A fresh hidden folder in ``parent`` named after this process (after removing any a dead
    process left behind: SIGKILL, a power cut)."""
    remove_stale(parent)
    work = Path(tempfile.mkdtemp(prefix=f"{INCOMPLETE}{os.getpid()}-{label}", dir=parent))
    publish_mode(work, directory=True)
    return work


def remove_stale(parent: Path) -> list[Path]:
    """Remove the ``.incomplete-<pid>-*`` folders in ``parent`` whose process is gone."""
    removed = []
    for folder in parent.glob(f"{INCOMPLETE}*"):
        pid = folder.name[len(INCOMPLETE):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def new_run_dir(results: str | Path, label: str = "run") -> Iterator[Path]:
    """Yield a fresh temporary directory; on success rename it to ``results/<stamp>-<label>``.

    The final name never exists before (a counter is appended if needed) and
    ``results/latest`` is repointed to it. On failure the temporary directory is removed.
    ``results/latest`` that is not a link (a real folder or file) is refused before any work.
    """
    from sdloop.errors import OutputError

    results = Path(results)
    latest = results / "latest"
    if (latest.exists() or latest.is_symlink()) and not latest.is_symlink():
        raise OutputError(f"{latest} is a real {'folder' if latest.is_dir() else 'file'}, not the link sdloop keeps "
                          "to the newest run; move or rename it (nothing was run)")
    results.mkdir(parents=True, exist_ok=True)
    work = _work_dir(results)
    try:
        yield work
        raise_if_terminated()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    final = results / f"{stamp}-{label}"
    counter = 1
    while True:
        try:
            os.rename(work, final)  # fails if final exists and is not empty
            break
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                shutil.rmtree(work, ignore_errors=True)
                raise
            counter += 1
            final = results / f"{stamp}-{label}-{counter}"
    _point_latest(results, final)


def _point_latest(results: Path, target: Path) -> None:
    link = results / "latest"
    tmp = results / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, link)


@contextmanager
def replaced_dir(out: str | Path) -> Iterator[Path]:
    """Yield a fresh folder that replaces ``out`` whole on success (never a mix of old and new files).

    An ``out`` that holds files sdloop did not write there this way (no ``OUTPUT_MARK``) is refused
    before any work; on failure ``out`` is left exactly as it was.
    """
    from sdloop.errors import OutputError

    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise OutputError(f"{out} is not a folder (choose a new folder for --out)")
        if any(out.iterdir()) and not (out / OUTPUT_MARK).exists():
            raise OutputError(f"{out} already holds files sdloop did not write there; choose a new or empty folder "
                              "for --out (nothing was run, nothing was changed)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = _work_dir(out.parent, out.name + "-")
    try:
        yield work
        raise_if_terminated()
        (work / OUTPUT_MARK).write_text("written whole by sdloop; replaced whole by the next run into this folder\n",
                                        encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".replaced-{os.getpid()}-{out.name}")  # kept if this process dies just here
            os.rename(out, old)
        try:
            os.rename(work, out)
        except BaseException:
            if old is not None:
                os.rename(old, out)
            raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit(cwd: str | Path = ".") -> str | None:
    """The current commit (with '-dirty' if the work tree has changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def manifest(*, models: Mapping[str, str | Path], runs: Mapping[str, Mapping[str, float]],
             inputs: Mapping[str, str | Path] = (), seeds: Mapping[str, int | None] | None = None,
             command: list[str] | None = None, notes: Mapping[str, object] | None = None,
             copies: Mapping[str, str] | None = None) -> dict:
    """The provenance of a run: versions, commit, file hashes, parameters and seeds (and, in
    ``copies``, where the run directory keeps its copy of each model and input file)."""
    import numpy
    import pysd

    from sdloop.version import __version__

    return {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "versions": {
            "sdloop": __version__,
            "pysd": pysd.__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pd.__version__,
        },
        # the commit of the folder holding the model (the study's), and of the sdloop code that ran
        "git_commit": git_commit(Path(next(iter(models.values()))).parent if models else "."),
        "sdloop_git_commit": git_commit(Path(__file__).resolve().parent),
        "models": {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in models.items()},
        "inputs": {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in dict(inputs).items()},
        "parameters": {name: dict(values) for name, values in runs.items()},
        "seeds": dict(seeds or {}),
        **({"copies": dict(copies)} if copies else {}),
        **({"notes": dict(notes)} if notes else {}),
    }


def write_json(data: Mapping, path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
