# The commands users type. Each creates .venv and installs sdloop when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test test-slow test-all calibrate bench check loops clean install suite

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/sdloop run

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS)

# pytest exits 5 when no test is marked slow; that is not a failure.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -n $(PYTEST_WORKERS) || [ $$? -eq 5 ]

test-all: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# Fits calibration/targets/{nev,ic,national}.toml with posteriors; rewrites
# calibration/fitted/CASE.toml, CASE.history.toml and CASE.posterior.csv and writes one
# report per case under results/.
calibrate: $(STAMP)
	$(BIN)/sdloop calibrate nev
	$(BIN)/sdloop calibrate ic
	$(BIN)/sdloop calibrate national

# Engine speed (sdloop bench), then calibration speed: ML fit and a 10,000-draw posterior per case.
bench: $(STAMP)
	$(BIN)/sdloop bench
	$(BIN)/python -m calibration.bench

# A folder laid out like PySD's test suite (each test folder: model + output.tab/output.csv)
# through sdloop simulate and plain PySD: make suite SUITE=path/to/test-models
SUITE ?= tests/fixtures/suite
suite: $(STAMP)
	$(BIN)/python tools/suite.py $(SUITE)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
