"""Errors a user can cause, each naming the file, line and variable where known."""

from __future__ import annotations

from pathlib import Path


class SdloopError(Exception):
    """A problem with user input, reported as ``FILE:LINE: VARIABLE: message``.

    ``exit_status`` is what the CLI exits with: 2 for unusable input (the default),
    1 for a run that failed on valid input (for example a non-finite simulation).
    """

    exit_status = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        variable: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.variable = variable
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.variable:
            where += f"{self.variable}: "
        return where + self.message


class ModelFileError(SdloopError):
    """A model file that cannot be read or built."""


class OverrideError(SdloopError):
    """A case, strategy or scenario file, or a --set value, that does not fit the model."""


class SimulationError(SdloopError):
    """A simulation that produced non-finite values."""

    exit_status = 1


class OutputError(SdloopError):
    """A file or folder sdloop cannot write (read-only, a file where a folder is needed, disk full).

    Raised before anything is changed, or after the partial output was removed: the message says
    which, and earlier results are never touched.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``timeout``, ``kill`` and CI cancellation send), handled like Ctrl-C."""


_TERMINATION = {"received": False}


def note_termination(received: bool = True) -> None:
    """Record that SIGTERM arrived (the signal handler calls this before raising ``Terminated``)."""
    _TERMINATION["received"] = received


def raise_if_terminated() -> None:
    """Raise ``Terminated`` when SIGTERM arrived but its exception was lost on the way: Python
    ignores an exception raised inside ``__del__`` (a ``ZipFile`` closing, for one) and the work
    went on. Called before a result is published, so a terminated command never publishes one."""
    if _TERMINATION["received"]:
        raise Terminated()


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (PySD's messages run over many lines)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__
