# Emotion Pipeline — the README's two commands are `make repro` and `make test`.
# Both create .venv and install the pinned requirements on first use (or when they change).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CLIENT_STAMP := client/node_modules/.installed
PLOTS_PAGE := .dvc/offline-plots.html
PROFILE ?=
PYTEST_ARGS ?=
SERVE_ARGS ?=
BASE ?= origin/main
PLOTS_DIR ?= report-plots
FER2013_ARCHIVE ?=
RELEASE ?= release/fer2013-v1

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.DEFAULT_GOAL := help
.PHONY: help setup assets repro try test test-slow test-all lint format fer2013 serve report clean-venv

help:  ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) (first time: a few minutes)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@touch $@

$(CLIENT_STAMP): client/package.json client/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ for the on-device client (client/)"; exit 2; }
	@echo "installing the on-device client's pinned npm packages into client/node_modules"
	@npm ci --prefix client --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# `dvc plots show/diff` page template (.dvc/config plots.html_template) with vega, vega-lite and
# vega-embed inlined from client/node_modules, so plots render offline
$(PLOTS_PAGE): $(STAMP) $(CLIENT_STAMP) src/emotion/tools/plots_page.py
	@emotion plots-page --out $@

setup: $(STAMP) $(CLIENT_STAMP) $(PLOTS_PAGE)  ## .venv + the client's npm packages + the offline `dvc plots` page

assets: setup  ## the pinned model files (DVC stage `assets`; a no-op once they are there)
	dvc repro --single-item assets

repro: setup  ## run the pipeline (PROFILE=name switches params.yaml first)
ifneq ($(PROFILE),)
	emotion profile use $(PROFILE)
endif
	emotion check
	dvc repro

test: assets  ## fast test suite (unit + one end-to-end dvc repro of a tiny config)
	python -m pytest $(PYTEST_ARGS)

test-slow: assets  ## only the tests `make test` leaves out (marked slow)
	python -m pytest -m slow $(PYTEST_ARGS)

test-all: assets  ## every test, slow ones included
	python -m pytest -m '' $(PYTEST_ARGS)

lint: setup  ## ruff lint + format check
	ruff check .
	ruff format --check .

format: setup  ## apply ruff fixes and formatting
	ruff check --fix .
	ruff format .

fer2013: setup  ## FER2013_ARCHIVE=path: put FER2013 under DVC (data/external/fer2013) + fer2013-cpu
	@test -n "$(FER2013_ARCHIVE)" || { echo "usage: make fer2013 FER2013_ARCHIVE=path/to/fer2013.tar.gz"; exit 2; }
	emotion dataset add $(FER2013_ARCHIVE) --name fer2013
	emotion profile use fer2013-cpu

serve: assets  ## serve models/ at http://127.0.0.1:8000 (SERVE_ARGS="--variant int8 --port 8080")
	emotion serve $(SERVE_ARGS)

try: assets  ## serve the released real-face model (release/) at http://127.0.0.1:8000: no data, no training
	emotion serve --model-dir $(RELEASE) $(SERVE_ARGS)

report: setup  ## PR report vs BASE (default origin/main): report.md + HTML plots diff in PLOTS_DIR
	emotion report --base $(BASE) --out report.md --plots-dir $(PLOTS_DIR)

clean-venv:  ## remove .venv (the next make target recreates it)
	rm -rf $(VENV)
