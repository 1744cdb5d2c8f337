# Emotion Pipeline — the README's two commands are `make repro` and `make test`.
# Both create .venv and install the pinned requirements on first use (or when they change).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
FACE_MODEL := assets/face_detection_short_range.tflite
PROFILE ?=
PYTEST_ARGS ?=
SERVE_ARGS ?=
BASE ?= origin/main
PLOTS_DIR ?= report-plots
FER2013_ARCHIVE ?= ../shared/fer2013/fer2013_trainval.tar.gz

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.DEFAULT_GOAL := help
.PHONY: help setup repro test test-all lint format fer2013 serve report clean-venv

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

$(FACE_MODEL): | $(STAMP)
	$(BIN)/emotion fetch-face-model --dest $@

setup: $(STAMP) $(FACE_MODEL)  ## create .venv with the pinned dependencies and the package (editable)

repro: setup  ## run the pipeline (PROFILE=name switches params.yaml first)
ifneq ($(PROFILE),)
	emotion profile use $(PROFILE)
endif
	dvc repro

test: setup  ## fast test suite (unit + one end-to-end dvc repro of a tiny config)
	python -m pytest $(PYTEST_ARGS)

test-all: setup  ## every test, slow ones included
	python -m pytest -m '' $(PYTEST_ARGS)

lint: setup  ## ruff lint + format check
	ruff check .
	ruff format --check .

format: setup  ## apply ruff fixes and formatting
	ruff check --fix .
	ruff format .

fer2013: setup  ## unpack FER2013 (FER2013_ARCHIVE=...) to data/external/fer2013 and switch to fer2013-cpu
	@test -f $(FER2013_ARCHIVE) || { echo "FER2013 archive not found: $(FER2013_ARCHIVE)"; exit 1; }
	mkdir -p data/external
	tar -xzf $(FER2013_ARCHIVE) -C data/external
	emotion profile use fer2013-cpu

serve: setup  ## serve models/ at http://127.0.0.1:8000 (SERVE_ARGS="--variant int8 --port 8080")
	emotion serve $(SERVE_ARGS)

report: setup  ## PR report vs BASE (default origin/main): report.md + HTML plots diff in PLOTS_DIR
	emotion report --base $(BASE) --out report.md --plots-dir $(PLOTS_DIR)

clean-venv:  ## remove .venv (the next make target recreates it)
	rm -rf $(VENV)
