# Two commands do all the set-up on a fresh clone: `make datasets` and `make test`.
# Each creates .venv when it is missing and installs what it needs (a stamp per extra, redone when pyproject changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLI := $(BIN)/anytasktune

.PHONY: datasets build test validate lint seeds-stats readme-tables clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# The tests exercise training and the review app too, so the dev install includes the train extra (torch pinned,
# CPU build here) and the review extra.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,train,review]'
	touch $@ $(VENV)/.installed-base $(VENV)/.installed-train $(VENV)/.installed-review

# The review app's browser tests need Debian's chromium and chromium-driver (system packages, through apt).
$(VENV)/.installed-browser: | $(BIN)/python
	@make/install-browser.sh $@

$(VENV)/.installed-train: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[train]'
	touch $@ $(VENV)/.installed-base

datasets: $(VENV)/.installed-base
	$(CLI) validate
	$(CLI) build

build: $(VENV)/.installed-base
	$(CLI) build

validate: $(VENV)/.installed-base
	$(CLI) validate

seeds-stats: $(VENV)/.installed-base
	$(CLI) seeds stats

# The README's seeds and agreement tables, rewritten from what the commands print now.
readme-tables: $(VENV)/.installed-base
	$(BIN)/python docs/readme_tables.py

test: $(VENV)/.installed-dev $(VENV)/.installed-browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) datasets/build .pytest_cache .ruff_cache

# Each layer adds its own targets (synth, release, training, benchmarks).
include $(wildcard make/*.mk)
