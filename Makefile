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

.PHONY: venv binaries actionlint lint docs test test-fast test-az demo bench clean

# The operator with its extras, and the repository's two other distributions editable from their
# paths, in one pip call: the test extra names them, and pip takes them from here, not an index.
DISTRIBUTIONS := pyproject.toml emulator/pyproject.toml kubectl-plugin/pyproject.toml
$(VENV)/.installed: $(DISTRIBUTIONS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	@# A venv from before the split has the operator owning the other two's scripts: uninstalling
	@# it after they are installed would delete them, so all three go first.
	$(PY) -m pip uninstall --quiet --yes aks-runcommand-operator aks-arm-emulator kubectl-runcommand
	$(PY) -m pip install --quiet -e ./emulator -e ./kubectl-plugin -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

binaries:
	bash tests/controlplane/build-binaries.sh

# Only actionlint, for lint: a stamp makes it a no-op when it is current.
actionlint:
	bash tests/controlplane/build-binaries.sh actionlint

lint: venv actionlint
	$(VENV)/bin/ruff check controller emulator kubectl-plugin tests benchmarks examples scripts docs/hooks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy scripts docs/hooks
	$(VENV)/bin/lint-imports
	$(if $(SHELLCHECK),$(SHELLCHECK) -s bash controller/core/fence.sh,@echo "lint: shellcheck not found: the workflows' run: scripts and the ExactlyOnce wrapper are not checked")
	$(BIN_DIR)/actionlint -shellcheck='$(SHELLCHECK)' .github/workflows/*.yml

# The docs site, strict: a warning (a broken link or anchor, a page missing from the nav) fails.
# The Reference pages are generated from the code during the build (docs/hooks/reference.py).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir .cache/site

test: venv binaries lint docs
	$(PY) -m pytest tests

# The pure and unit tiers alone, on both cores: what to run between edits.
test-fast: venv
	$(PY) -m pytest -m "not e2e" tests

# The real az CLI against the emulator (tests/az/): opt-in, as az is large. It gets a virtual
# environment of its own (pinned in tests/az/requirements.txt), apart from the operator's.
AZ_VENV := .cache/az
$(AZ_VENV)/.installed: tests/az/requirements.txt
	$(PYTHON) -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(AZ_VENV)/bin/python -m pip install --quiet -r tests/az/requirements.txt
	touch $@

test-az: venv binaries $(AZ_VENV)/.installed
	AZ_CLI=$(CURDIR)/$(AZ_VENV)/bin/az $(PY) -m pytest tests/az

demo: venv binaries
	$(PY) -m examples.demo

bench: venv binaries
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .cache
