# The README's commands. Both `run` and `test` create .venv/ themselves on a fresh clone.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

export DO_NOT_TRACK := 1
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "make: $(PY) not found (set PY=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run the nightly job once on the bundled sample letters
run: setup
	$(BIN)/ofsted run --inbox data/sample_letters

## the whole test suite (pytest, which also drives dbt, GX and Airflow)
test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser"

lint: setup
	$(BIN)/ruff check ingest dags expectations tests benchmarks
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

clean:
	rm -rf data/archive data/warehouse data/runs data/alerts data/report .airflow dbt_project/target
