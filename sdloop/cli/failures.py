"""What every ``sdloop`` command prints and exits with when it fails: the one place that decides.

``report(exc)`` turns any exception into one line on standard error and an exit status:

- an ``SdloopError`` (bad model file, TOML, option, name; a run that went non-finite) prints
  ``sdloop: error: FILE:LINE: VARIABLE: message`` and exits with its status (2 unusable input,
  1 a run that failed on valid input);
- an operating-system error (a folder that is read-only or a file, a disk that is full) names
  the path and the reason, says what was left as it was, and exits 2 when the path given cannot
  be used, 1 when the machine ran out of something;
- Ctrl-C exits 130 and SIGTERM 143, after the same clean-up (``sdloop: interrupted``);
- standard output closed early (``sdloop simulate ... | head``) ends quietly with 141, as
  Unix tools do;
- anything else is a bug in sdloop: one line saying so, exit 1 (``--debug`` shows the traceback).

``signals_as_interrupts()`` makes SIGTERM raise ``Terminated`` (a ``KeyboardInterrupt``) in
the main process, so every ``with``-block and ``except BaseException`` clean-up runs for it as
for Ctrl-C. ``tidy_warnings()`` prints each Python warning as one line, without source code.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sdloop.errors import OutputError, SdloopError, Terminated

BROKEN_PIPE_STATUS = 141
INTERRUPTED_STATUS = 130
TERMINATED_STATUS = 143

# errno -> (what it means, exit status): 2 when the path given is unusable, 1 when a resource ran out
_OS_REASONS = {
    errno.EACCES: ("permission denied", 2),
    errno.EPERM: ("operation not permitted", 2),
    errno.EROFS: ("read-only file system", 2),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", 2),
    errno.EISDIR: ("is a folder, not a file", 2),
    errno.EEXIST: ("already exists (as a file where a folder is needed, or the reverse)", 2),
    errno.ENOENT: ("no such file or folder", 2),
    errno.ENAMETOOLONG: ("name too long", 2),
    errno.ELOOP: ("too many levels of symbolic links", 2),
    errno.ENOSPC: ("no space left on the device", 1),
    errno.EDQUOT: ("disk quota exceeded", 1),
    errno.EFBIG: ("file too large (a file-size limit was reached)", 1),
    errno.EMFILE: ("too many open files", 1),
    errno.EIO: ("input/output error", 1),
}


def describe_os_error(exc: OSError) -> tuple[str, int]:
    """One line for an operating-system error, naming the path, and its exit status."""
    reason, status = _OS_REASONS.get(exc.errno, (exc.strerror or type(exc).__name__, 1))
    paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = f"{paths[-1]}: " if paths else ""  # a rename's destination, else the path
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and paths:
        blocking = _file_in_the_way(paths[-1])
        if blocking:
            return f"{blocking}: is a file, where a folder is needed", 2
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "; the partial output was removed and earlier results are untouched (free some space and run again)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; nothing was written there (choose a folder you can write, e.g. with --results or --out)"
    return f"{where}{reason}{hint}", status


def _file_in_the_way(path: str) -> str | None:
    """The path itself or the nearest of its folders that exists as something other than a folder."""
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else str(candidate)
    return None


def report(exc: BaseException) -> int:
    """Print ``exc`` as the one line a user sees; return the exit status."""
    if isinstance(exc, Terminated):
        _say("terminated")
        return TERMINATED_STATUS
    if isinstance(exc, KeyboardInterrupt):
        _say("interrupted")
        return INTERRUPTED_STATUS
    if isinstance(exc, BrokenPipeError):
        silence_stdout()
        return BROKEN_PIPE_STATUS
    if isinstance(exc, SdloopError):
        _say(f"error: {exc}")
        return exc.exit_status
    if isinstance(exc, OSError):
        message, status = describe_os_error(exc)
        _say(f"error: {message}")
        return status
    if isinstance(exc, MemoryError):
        _say("error: out of memory (fewer draws, a smaller --chunk or fewer --workers need less)")
        return 1
    if isinstance(exc, RecursionError):
        _say("error: the model is nested too deeply to evaluate (an equation refers through a very long chain)")
        return 2
    first = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
    _say(f"internal error: {detail} (a bug in sdloop, not in your input; --debug shows the traceback)")
    return 1


def _say(text: str) -> None:
    try:
        print(f"sdloop: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # standard error closed too: nothing more to say
        pass


def silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def as_sdloop_error(exc: OSError, what: str, *, kept: str = "") -> OutputError:
    """An OSError while writing ``what`` (e.g. 'the run directory') as an OutputError with its path."""
    message, status = describe_os_error(exc)
    error = OutputError(f"cannot write {what}: {message}" + (f"; {kept}" if kept else ""))
    error.exit_status = status
    return error


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM raises ``Terminated`` in this process while the block runs (restored afterwards).

    Child processes forked meanwhile keep the default behaviour: the handler re-sends the signal
    to itself with the default action when it runs anywhere but in the process that installed it.
    """
    from sdloop.errors import note_termination

    owner = os.getpid()
    note_termination(False)

    def handler(signum, frame):
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        note_termination()  # remembered: the exception below can be swallowed (raised inside a __del__)
        raise Terminated()

    def unraisable(info) -> None:  # Terminated raised inside a __del__: recorded above, not printed
        if not isinstance(info.exc_value, KeyboardInterrupt):
            default_hook(info)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    default_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = default_hook


@contextmanager
def tidy_warnings() -> Iterator[None]:
    """Each warning as one line ``sdloop: warning: message``, once per message, no source code."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        if text not in seen:
            seen.add(text)
            _say(f"warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every run of a command says it again (``seen`` keeps it to once)
        warnings.showwarning = show
        yield
