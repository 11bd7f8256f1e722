# placelake: `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PLACELAKE_HOME ?= $(CURDIR)/var
JARS_STAMP := .cache/jars/.fetched
VENV_STAMP := $(VENV)/.installed
# For the embedded default only: a random key made once for this machine and
# kept under PLACELAKE_HOME (git-ignored). Real places set PLACELAKE_PSEUDONYM_KEY.
DEV_KEY := $(PLACELAKE_HOME)/.pseudonym_key

.PHONY: help setup browser run test test-engines test-cluster test-reliability test-airflow test-unit report serve-sql lint clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV_STAMP): setup.cfg constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

$(JARS_STAMP): $(VENV_STAMP) jobs/config.py
	$(BIN)/placelake setup
	@touch $@

setup: $(VENV_STAMP) $(JARS_STAMP) ## create .venv, install pinned dependencies, fetch the Delta jars once

$(DEV_KEY):
	@mkdir -p $(dir $@)
	@umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > $@
	@echo "made a development pseudonym key for this machine: $@ (set PLACELAKE_PSEUDONYM_KEY for real data)"

run: setup $(DEV_KEY) ## run the whole pipeline on a generated place (embedded Spark and Airflow)
	@PLACELAKE_PSEUDONYM_KEY="$${PLACELAKE_PSEUDONYM_KEY:-$$(cat $(DEV_KEY))}" $(BIN)/placelake run

# The report is tested in a real browser: Debian's Chromium (as root, as CI runs).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: setup browser ## run the test suite (unit, DAG integrity, end-to-end integration, report in Chromium)
	$(BIN)/pytest

test-engines: setup ## each fast path (DuckDB, delta-rs, in-memory checks) and Splink on Spark give what the Spark path gives (CI runs it after make test)
	$(BIN)/pytest -m engines tests/integration tests/unit

test-cluster: setup ## the pipeline on a real Spark standalone cluster (master + 2 workers on 127.0.0.1) equals a local run
	$(BIN)/pytest -m cluster tests/cluster

test-reliability: setup ## re-runs, SIGKILLs, concurrent runs, hostile extracts, erasure, key leaks (whole pipelines; 21 min on this 2-core machine; CI runs it after make test and make test-engines)
	$(BIN)/pytest -m reliability tests/reliability

test-airflow: setup ## the DAGs under a real Airflow 3 scheduler, dag-processor and api-server: assets, backfill, clear
	$(BIN)/pytest -m airflow tests/airflow

test-unit: setup ## unit tests only (no end-to-end run)
	$(BIN)/pytest -m "not integration and not cluster and not reliability and not airflow and not engines"

report: setup ## rewrite the quality report for the latest run and open it
	$(BIN)/placelake report --open

# BI tools connect to jdbc:hive2://<host>:<port>/gold (gold tables only; see README "For analysts").
serve-sql: setup ## the Spark Thrift (JDBC/ODBC) server over gold (env PLACELAKE_SQL_HOST, PLACELAKE_SQL_PORT; default 127.0.0.1:10000)
	$(BIN)/python -m jobs.thrift

lint: setup ## ruff, including Airflow's AIR rules
	$(BIN)/ruff check jobs dags tests bench
	$(BIN)/ruff format --check jobs dags tests bench

clean: ## remove everything a run produced ($$PLACELAKE_HOME)
	rm -rf "$(PLACELAKE_HOME)" spark-warehouse metastore_db derby.log

distclean: clean ## also remove .venv and the fetched jars
	rm -rf $(VENV) .cache

.PHONY: bench
bench: setup ## benchmarks (not tests): each bench/bench_*.py prints and writes bench/results/
	@mkdir -p bench/results
	@set -e; for b in bench/bench_*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python "$$b"; done
