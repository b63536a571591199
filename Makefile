# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates .venv with the exact versions of requirements.lock when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json

.PHONY: demo test test-fast nightly lint dev install browser postgres wheelhouse image-wheels clean

install: $(STAMP) $(MANIFEST)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# The Glue job's wheels (deploy uploads them; the tests run offline): from the package index,
# into ~/.cache/sf-lakehouse/wheelhouse, once per set of pins.
wheelhouse: $(STAMP)
	$(BIN)/python -c 'from sf_lakehouse.aws.deploy.wheelhouse import prefetch; print(prefetch())'

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

# Tiers (DEVELOPERS.md, "Which tests to run"): `make test` runs every test but the nightly
# profiles (about 11 minutes on 2 cores in a fresh clone; the goal is 10); `make test-fast` the unit and contract tests (not
# marked slow: about 2 minutes); `make nightly` the long property profiles and the throughput
# floor of benchmarks/bulk_convert_rate.py.
# The image test installs offline from the wheels of the lock, fetched once per lock.
image-wheels: $(STAMP)
	$(BIN)/python -m sf_lakehouse_tests.image_wheels

test: install browser postgres wheelhouse image-wheels
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: install wheelhouse
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow and not nightly"

nightly: install
	$(BIN)/python -m pytest -m nightly
	$(BIN)/python -m benchmarks.bulk_convert_rate

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
