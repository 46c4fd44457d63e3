"""sdloop: system-dynamics feedback-loop modelling for industrial, trade and innovation policy."""

from sdloop.version import __version__

__all__ = ["__version__"]
