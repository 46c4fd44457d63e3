"""Shared helpers for the analysis tests: cached structures and runs of the fixtures."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@lru_cache(maxsize=None)
def structure(name: str):
    from sdloop.structure.build import build_structure

    return build_structure(FIXTURES / name)


@lru_cache(maxsize=None)
def run(name: str):
    from sdloop.engines.euler import simulate

    return simulate(structure(name))


@lru_cache(maxsize=None)
def loops(name: str):
    from sdloop.analysis.loops import analyse

    return analyse(structure(name), run(name))
