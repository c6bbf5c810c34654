# `make up` runs the suite as local processes; `make test` runs every test. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint format unit integration bench bench-all profile clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

up: $(STAMP)
	$(BIN)/python -m tools.run_local

test: lint $(STAMP)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/app

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

# Not a test: prints figures (see docs/benchmarks.md). Needs Debian's wrk, the load generator.
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.run $(ARGS)

# Where the balancer's time goes under load, sampled by py-spy (installed in .venv by requirements-dev.txt).
profile: $(STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.profile $(ARGS)

# Every benchmark in turn (about 50 minutes), then docs/benchmarks.md's tables from what they wrote. Run it on a
# quiet machine, on committed code: each results file is stamped with the commit it measured.
bench-all: $(STAMP)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 2; }
	$(BIN)/python -m bench.decision
	$(BIN)/python -m bench.allocation
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.sharing_cost
	$(BIN)/python -m bench.replicas
	$(BIN)/python -m bench.profile
	$(BIN)/python -m bench.day
	$(BIN)/python -m bench.doc --write

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
