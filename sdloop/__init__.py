"""sdloop: system-dynamics feedback-loop modelling for industrial, trade and innovation policy."""

__version__ = "0.1.0"
