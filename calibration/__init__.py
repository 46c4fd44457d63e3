"""Calibration of sdloop models to published indicators, with honest uncertainty.

Layers (data flows one way): ``data`` (indicator CSVs) -> ``targets`` (what to fit) ->
``fit`` (likelihood and multi-start search) -> ``stats`` / ``uncertainty`` / ``validate``
-> ``report`` (tables and figures; the only module importing matplotlib) -> ``cli``.
"""

from calibration.data import Series, load_series
from calibration.errors import CalibrationError, FitFailed
from calibration.targets import Targets, load_targets

__all__ = ["CalibrationError", "FitFailed", "Series", "Targets", "load_series", "load_targets"]
