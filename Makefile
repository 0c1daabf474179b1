# Two set-up commands: `make demo` and `make test`. Everything they need is built or installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN_DIR := $(CURDIR)/.cache/bin
export BIN_DIR
export PATH := $(CURDIR)/$(VENV)/bin:$(BIN_DIR):$(PATH)
# actionlint runs shellcheck on the workflows' run: scripts when it is installed (.ci/run installs
# Debian's package); without it those scripts are not checked, and lint says so.
SHELLCHECK ?= $(shell command -v shellcheck 2>/dev/null)

.PHONY: venv binaries actionlint lint test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

binaries:
	bash tests/controlplane/build-binaries.sh

# Only actionlint, for lint: a stamp makes it a no-op when it is current.
actionlint:
	bash tests/controlplane/build-binaries.sh actionlint

lint: venv actionlint
	$(VENV)/bin/ruff check controller tests benchmarks examples scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy scripts
	$(VENV)/bin/lint-imports
	$(if $(SHELLCHECK),$(SHELLCHECK) -s bash controller/core/fence.sh,@echo "lint: shellcheck not found: the workflows' run: scripts and the ExactlyOnce wrapper are not checked")
	$(BIN_DIR)/actionlint -shellcheck='$(SHELLCHECK)' .github/workflows/*.yml

test: venv binaries lint
	$(PY) -m pytest tests

demo: venv binaries
	$(PY) -m examples.demo

bench: venv binaries
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .cache
