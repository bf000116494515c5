# Tally: `make run` starts the platform, `make test` proves it. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test install browser node wrk lint format bench chaos lock clean help

help:
	@echo "make run     start Tally (web, worker, beat; embedded PostgreSQL and Redis unless URLs are set)"
	@echo "make test    run the whole test suite (installs what it needs first)"
	@echo "make lint    ruff"
	@echo "make bench   the whole platform measured over HTTP, every figure a ratio to a same-run baseline"
	@echo "make chaos   a running Tally under faults (worker killed, Redis killed, database connections dropped)"
	@echo "make lock    re-pin config/constraints.txt from pyproject.toml"

$(STAMP): pyproject.toml config/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c config/constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download does not work offline).
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "Could not install chromium: browser tests will skip (or fail when CI is set)."; \
	else \
		echo "No $(CHROMIUM) and no root apt-get: browser tests will skip (or fail when CI is set)."; \
	fi

# Debian's Node.js for the TV page's JavaScript unit tests (tests/js, Node's built-in runner, no npm packages).
node:
	@if command -v node >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's nodejs for the JavaScript tests..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null) \
			|| echo "Could not install nodejs: the JavaScript tests will skip (or fail when CI is set)."; \
	else \
		echo "No node and no root apt-get: the JavaScript tests will skip (or fail when CI is set)."; \
	fi

run: install
	$(PY) -m config.supervisor

test: install browser node
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# wrk (Debian's package) loads the server in `make bench`: a Python client could not reach the rates.
wrk:
	@if command -v wrk >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing wrk for the benchmark..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else \
		echo "make bench needs wrk (apt-get install wrk, brew install wrk)"; exit 1; \
	fi

bench: install wrk
	$(PY) -m config.bench $(BENCH_ARGS)

# Kills a worker, Redis and every database connection of a Tally it starts itself (on embedded servers
# of its own), and checks that nothing was lost or doubled and no answer was a 500.
chaos: install
	$(PY) -m config.chaos $(CHAOS_ARGS)

lock:
	@rm -rf /tmp/tally-lock-venv && $(PYTHON) -m venv /tmp/tally-lock-venv
	/tmp/tally-lock-venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	@(echo "# Pinned versions: pip install -c config/constraints.txt -e '.[dev]'. Regenerate with 'make lock'."; \
		/tmp/tally-lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e\|^#') > config/constraints.txt
	@rm -rf /tmp/tally-lock-venv
	@echo "config/constraints.txt updated"

clean:
	rm -rf $(VENV) .pytest_cache
