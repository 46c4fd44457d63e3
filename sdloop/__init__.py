"""sdloop: system-dynamics feedback-loop modelling for industrial, trade and innovation policy.

The Python API (``sdloop.api``): ``sdloop.load(path)`` gives a model whose ``.run(params)``
returns a DataFrame (or an xarray Dataset for N parameter sets); ``sdloop.run_project(path)``
runs a project file and returns its run directory; ``sdloop.load_run(path)`` reads a run
directory back as tidy tables. Importing sdloop loads nothing heavy and changes no global state.
"""

from sdloop.version import __version__

__all__ = ["__version__", "load", "run_project", "load_run", "Model", "RunDirectory"]


def __getattr__(name: str):
    if name in ("load", "run_project", "load_run", "Model", "RunDirectory"):
        from sdloop import api

        return getattr(api, name)
    raise AttributeError(f"module 'sdloop' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API's names too (loaded on first use), so a notebook's completion offers them."""
    return sorted(set(globals()) | set(__all__))
