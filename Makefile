# caseledger: `make run` starts the whole stack, `make test` runs the suite.
# Both create the virtual environment and install everything on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install browser wrk run test test-all bench lint clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install caseledger with its tools

# The dashboard tests drive the system Chromium (Debian's package); no browser is downloaded.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium for the dashboard tests (apt-get) ..."; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	  { echo "could not install Chromium: install it (package chromium) and run make test again"; exit 1; }; }

# The HTTP benchmark loads the API with wrk (Debian's package), a C client that does not
# saturate before the server does.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk for the HTTP benchmark (apt-get) ..."; \
	  apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; } || \
	  { echo "could not install wrk: install it (package wrk) and run make bench again"; exit 1; }; }

run: install  ## start PostgreSQL, the broker, the API, the relay and the projection worker
	$(BIN)/caseledger up

test: install browser  ## the suite without the slow soak tests (starts its own broker)
	$(BIN)/pytest -m "not slow"

test-all: install browser  ## every test, the slow ones too
	$(BIN)/pytest

bench: install wrk  ## benchmarks, each beside a raw baseline (BENCH_QUICK=1 for a short run)
	$(BIN)/python -m bench

lint: install  ## ruff, mypy and the import contracts (the suite runs them too)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) .caseledger .pytest_cache .mypy_cache .ruff_cache
