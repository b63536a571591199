# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates .venv with the exact versions of requirements.lock when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json

.PHONY: demo test lint dev install browser postgres clean

install: $(STAMP) $(MANIFEST)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# dagster-dbt reads the dbt manifest when the code location loads; build it once here.
$(MANIFEST): $(STAMP) $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v target/)
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --target local
	touch $(MANIFEST)

demo: install
	$(BIN)/sf-lakehouse demo

# The browser test drives Debian's Chromium; installing it needs root (CI is root).
browser:
	@bash .ci/install-browser || echo "warning: no Chromium; the browser test will fail (run .ci/install-browser as root)"

# The production-shape tests start Debian's PostgreSQL; installing it needs root (CI is root).
postgres:
	@bash .ci/install-postgres || echo "warning: no PostgreSQL; the production-shape tests will fail (run .ci/install-postgres as root)"

test: install browser postgres
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

dev: install
	$(BIN)/dagster dev

clean:
	rm -rf $(VENV) .lakehouse dbt_project/target dbt_project/logs

# Benchmarks (never part of `make test`): the peers (dlt, psutil, matplotlib) live in their own
# venv from benchmarks/requirements.lock; the pipeline side runs with the project's .venv.
# BENCH_SIZES=400,10000,100000,1000000 (default), BENCH_RUNS, BENCH_PEERS, ... see README.
BENCH_VENV := benchmarks/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: bench

$(BENCH_STAMP): benchmarks/requirements.lock
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r benchmarks/requirements.lock
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	BENCH_PROJECT_PYTHON=$(abspath $(BIN))/python $(BENCH_VENV)/bin/python -m benchmarks.run_all
