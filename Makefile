# Two commands for newcomers: `make demo` and `make test`. Every target bootstraps .venv from the
# committed, hashed lock file (requirements.lock) when needed: nothing to install by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install demo test check lint types pytest cov bench lock clean

help:
	@echo "make demo    - tour on the embedded IB Gateway simulator (no account needed)"
	@echo "make test    - lint (ruff), types (mypy strict), tests (pytest with coverage)"
	@echo "make install - create .venv from requirements.lock"
	@echo "make check   - lint + types only"
	@echo "make cov     - tests with an HTML coverage report in htmlcov/"
	@echo "make bench   - run every benchmark in bench/"
	@echo "make lock    - regenerate requirements.lock from pyproject.toml"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ibkr-mcp demo --sim

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

check: lint types

pytest: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

test: check pytest

cov: $(STAMP)
	$(BIN)/pytest --cov --cov-report=html --cov-report=term:skip-covered $(PYTEST_ARGS)
	@echo "HTML report: htmlcov/index.html"

bench: $(STAMP)
	@set -e; export BENCH_RESULTS=$$(mktemp); for f in bench/bench_*.py; do echo "== $$f"; \
		$(BIN)/python $$f; done; $(BIN)/python bench/report.py "$$BENCH_RESULTS"; rm -f "$$BENCH_RESULTS"

lock: $(STAMP)
	@$(BIN)/python -m uv --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet uv
	$(BIN)/python -m uv pip compile pyproject.toml --all-extras --generate-hashes \
		--python-version 3.11 --no-header --quiet -o requirements.lock

clean:
	rm -rf $(VENV) htmlcov .coverage .pytest_cache .mypy_cache .ruff_cache
