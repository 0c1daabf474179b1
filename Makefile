# Two set-up commands: `make demo` and `make test`. Everything they need is built or installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN_DIR := $(CURDIR)/.cache/bin
export BIN_DIR
export PATH := $(CURDIR)/$(VENV)/bin:$(BIN_DIR):$(PATH)

.PHONY: venv binaries lint test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

binaries:
	bash tests/controlplane/build-binaries.sh

lint: venv
	$(VENV)/bin/ruff check controller tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: venv binaries lint
	$(PY) -m pytest tests

demo: venv binaries
	$(PY) -m examples.demo

bench: venv binaries
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .cache
