# The README's commands. Both `run` and `test` create .venv/ themselves on a fresh clone.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

export DO_NOT_TRACK := 1
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: setup run test test-fast lint bench clean lock up down night status

LOCK    := requirements/dev.lock
PROD_LOCK := requirements/production.lock

MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project/dbt_project.yml dbt_project/models dbt_project/seeds dbt_project/tests dbt_project/macros dbt_project/analyses -type f 2>/dev/null)

setup: $(STAMP) $(MANIFEST)

# dbt's saved parse (target/partial_parse.msgpack, with the manifest), rebuilt when the dbt project
# changes: the night's dbt copies it into a target dir that has none, so `make run` parses nothing.
$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	cd dbt_project && DO_NOT_TRACK=1 OFSTED_WORK_WAREHOUSE="$$(../$(BIN)/python -c "from ingest.settings import get_settings; print(get_settings().work_warehouse)")" \
	  ../$(BIN)/dbt parse --quiet --profiles-dir . --target-path target
	touch $(MANIFEST)

# Installs exactly the locked set (dev + production extras), then the project without deps.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PY) >/dev/null 2>&1 || { echo "make: $(PY) not found (set PY=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## re-pin every dependency from pyproject.toml (dev lock first; production is a subset of it)
lock:
	test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra production --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line --upgrade -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra production --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line -c $(LOCK) -o $(PROD_LOCK)

## the local production-shaped stack: PostgreSQL, Redis, Airflow api-server, scheduler,
## dag-processor, triggerer and a Celery worker under supervisord (see orchestration/stack.py)
up: setup
	$(BIN)/python -m orchestration.stack up

down:
	@if test -x $(BIN)/python; then $(BIN)/python -m orchestration.stack down; else echo 'stack: not running'; fi

status:
	$(BIN)/python -m orchestration.stack status

## an extra Celery worker on this machine (default queue: parse), joined to the data host's stack:
## make worker JOIN=<copy of the data host's <data dir>/stack/stack.env> [NAME=<its name>]
## (needs OFSTED_BATCH_STORE and its AWS_* settings; `make down` stops it)
worker: setup
	$(BIN)/python -m orchestration.stack worker --join "$(JOIN)" $(if $(NAME),--name "$(NAME)")

## trigger one night through the stack's REST API and follow it (exit 1 when it fails)
night: setup
	$(BIN)/python -m orchestration.stack night

## run the nightly job once on the bundled sample letters
run: setup
	$(BIN)/ofsted run --inbox data/sample_letters

## the whole test suite (pytest, which also drives dbt, GX and Airflow); prints its slowest tests.
## It runs on every core (pytest-xdist, at most 4 workers; TEST_WORKERS=0 for one process): a
## file's tests stay on one worker, so what a file builds once is built once; the tests that
## start a whole stack are one group, run first (tests/conftest.py).
TEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(TEST_WORKERS) --maxprocesses 4 --no-loadscope-reorder
test: setup
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) --durations=15

## the tests that need no dbt build, Airflow night, browser or stack
test-fast: setup
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser and not stack" --durations=10

## every Python package and the dbt project's SQL (`.ci/run` runs it before the tests)
LINT_PY := ingest orchestration devtools dags expectations tests benchmarks
lint: setup
	$(BIN)/ruff check $(LINT_PY)
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/tests dbt_project/analyses --processes 2

## benchmark scripts: each prints its figures (no timed assertions anywhere)
bench: export PYTHONPATH := $(CURDIR)
bench: setup
	$(BIN)/python benchmarks/parse_bench.py
	$(BIN)/python benchmarks/load_bench.py
	$(BIN)/python benchmarks/dbt_bench.py
	$(BIN)/python benchmarks/analysts_bench.py
	$(BIN)/python benchmarks/theme_quality.py
	$(BIN)/python benchmarks/run_bench.py
	$(BIN)/python benchmarks/report_bench.py
	$(BIN)/python benchmarks/stack_bench.py

clean:
	rm -rf data/archive data/warehouse data/runs data/alerts data/report data/dbt_target .airflow dbt_project/target
