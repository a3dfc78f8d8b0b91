# LLM Analytics Hub — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./data
APT_PACKAGES := victoria-metrics prometheus prometheus-alertmanager chromium chromium-driver redis-server

.PHONY: install apt proto run test test-fast lint typecheck bench clean

## install: create .venv/ with the hub installed (editable) and the `hub` command in .venv/bin/
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,analytics]'
	$(BIN)/pip install --quiet 'torch==2.13.0' || echo "torch 2.13.0 not installable here: the LSTM detector stays disabled"
	$(MAKE) proto
	touch $@

## proto: compile proto/*.proto into receivers/native_grpc/_gen (done by install)
proto:
	$(BIN)/python scripts/compile_protos.py

## apt: the Debian packages the tests use for real (VictoriaMetrics, Prometheus' promtool, Alertmanager)
apt:
	bash scripts/install_apt.sh $(APT_PACKAGES)

## run: start the hub on the embedded default (DuckDB in $(DATA_DIR))
run: install
	$(BIN)/hub run --data-dir $(DATA_DIR)

## test: install everything (apt packages, venv, pip packages), lint and type-check, run the whole suite
test: apt install
	$(BIN)/ruff check .
	$(BIN)/mypy hubcore receivers processors exporters api hub analytics
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy hubcore receivers processors exporters api hub analytics

bench: install
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
