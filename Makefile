# One Makefile; CI (.ci/run) calls these targets too.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint typecheck bench-small clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	scripts/setup-system.sh

## Start the hub with demo data (server + worker + provider sandbox + private Redis + SQLite).
demo: setup
	$(BIN)/python -m notify up --demo

# Test processes (pytest-xdist). Much of the suite waits on servers (sandboxes, PostgreSQL,
# Redis, Chromium): two processes halve its time on a 2-core machine (632 s → 327 s). Each
# process has its own PostgreSQL database and Redis database number (tests/conftest.py).
TEST_PROCESSES ?= 2

## Run the whole test suite (starts PostgreSQL and Redis when they are not running).
test: setup
	scripts/start-services.sh
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

test-fast: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_PROCESSES) -m "not browser"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data artifacts .pytest_cache .mypy_cache .ruff_cache
