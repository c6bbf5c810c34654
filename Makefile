# `make up` runs the suite as local processes; `make test` runs every test; `make check` is the everyday loop.
# Each sets up what it needs first: Debian's packages (tools/system-packages.sh), then .venv from uv.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# uv installs the locked dependencies (uv.lock, from pyproject.toml's ranges) in seconds.
UV_VERSION := 0.13.9
# This machine's Python, never one uv would download.
export UV_PYTHON_DOWNLOADS := never
# Bytecode written at install: every service process the tests start would otherwise compile its libraries
# anew (uv does not compile by default, and where PYTHONDONTWRITEBYTECODE is set nothing is ever cached).
export UV_COMPILE_BYTECODE := 1
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed
# Tests run this many at a time (each integration test starts its own processes, on free loopback ports; the
# modules that share one grid go to one worker, tests/conftest.py); the few that need the machine to themselves
# (timed CPU, load) run after, two at a time: tests marked `serial`. Four, not six: at six the 2-core machine ran
# so hot that deadlines of a few seconds were missed now and then (one failure in most full runs).
WORKERS ?= 4

.PHONY: up test check lint format unit integration lock bench bench-all profile clean system-packages

$(UV):
	@PYTHON=$(PYTHON) bash tools/system-packages.sh up
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# What running needs; `--inexact` keeps the test tools of an earlier `make test`.
$(RUN_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --no-dev --quiet
	@touch $@

$(TEST_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --quiet
	@touch $@ $(RUN_STAMP)

up: $(RUN_STAMP)
	$(BIN)/python -m tools.run_local

# Debian's packages the tests run, installed as root with apt, else named in one message, before anything else.
system-packages:
	@PYTHON=$(PYTHON) bash tools/system-packages.sh test

test: system-packages $(TEST_STAMP) lint
	@bash tools/standin-images.sh
	$(BIN)/python -m pytest -n $(WORKERS) -m "not serial"
	$(BIN)/python -m pytest -n 2 -m serial

# Lint, types, and the tests that start no process: under a minute.
check: $(TEST_STAMP) lint
	$(BIN)/python -m pytest -n 2 tests/unit tests/app

unit: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/unit tests/app

integration: $(TEST_STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -m "not serial" tests/integration
	$(BIN)/python -m pytest -n 2 -m serial tests/integration

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# After a change of pyproject.toml's dependencies: the lock, and the images' requirements.txt exported from it.
lock: $(UV)
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --quiet -o requirements.txt

# Not a test: prints figures (see docs/benchmarks.md). Needs Debian's wrk, the load generator.
bench: $(TEST_STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.run $(ARGS)

# Where the balancer's time goes under load, sampled by py-spy (a test dependency).
profile: $(TEST_STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.profile $(ARGS)

# Every benchmark in turn (about 80 minutes), then docs/benchmarks.md's tables from what they wrote. Run it on a
# quiet machine, on committed code: each results file is stamped with the commit it measured.
bench-all: $(TEST_STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.decision
	$(BIN)/python -m bench.allocation
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.sharing_cost
	$(BIN)/python -m bench.replicas
	$(BIN)/python -m bench.profile
	$(BIN)/python -m bench.day
	$(BIN)/python -m bench.departures
	$(BIN)/python -m bench.departures_day
	$(BIN)/python -m bench.ocpp --py-spy 60
	$(BIN)/python -m bench.doc --write

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .mypy_cache
