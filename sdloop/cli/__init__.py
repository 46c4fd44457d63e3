"""The ``sdloop`` command line, one module per command group."""

from sdloop.cli.main import main

__all__ = ["main"]
