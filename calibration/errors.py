"""Errors of the calibration package, reported like every sdloop error."""

from __future__ import annotations

from sdloop.errors import SdloopError


class CalibrationError(SdloopError):
    """A target file, indicator CSV or bound that is unusable (exit status 2)."""


class FitFailed(SdloopError):
    """A fit that did not converge or gave a non-finite objective (exit status 1).

    Raised before anything is written, so no fitted file is overwritten by a bad result.
    """

    exit_status = 1
