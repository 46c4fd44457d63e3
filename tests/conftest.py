"""Shared test setup: a translation cache inside the repository, and common paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# SDLOOP_TEST_MODELS points the tests at another models/ tree (used for mutation checks).
MODELS = Path(os.environ.get("SDLOOP_TEST_MODELS", ROOT / "models"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("SDLOOP_CACHE", str(ROOT / ".cache" / "sdloop-test"))


@pytest.fixture(scope="session")
def compiler():
    """The C compiler the compiled engine builds with; the test is skipped where cffi, a compiler
    or Python's headers are missing (the numpy-engine fallback is tested everywhere)."""
    from sdloop.engines.cbuild import CompilerUnavailable, require_prerequisites

    try:
        return require_prerequisites()
    except CompilerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def policy_loop():
    from sdloop.engines.pysd_model import load_model

    return load_model(MODELS / "policy_loop.mdl")
