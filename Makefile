# data-manager: `make demo` shows the whole system, `make test` runs every test tier. Both set up what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=
MODULES ?=
# the pure modules under mutation testing and their coverage: the one list (tests/mutation/run.py reads it)
MUTATION_CONFIG := tests/mutation/modules.toml

.PHONY: help venv rig-build rig-up rig-down rig-status lint typecheck test test-unit test-integration \
        test-e2e test-kind crds bench demo clean mutation coverage

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

venv: $(VENV)/.installed  ## create .venv with the project and its dev tools
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

rig-build:  ## build or install the pinned rig components (cached in ~/.cache/datamanager-rig)
	tests/rig/build.sh

rig-up: venv rig-build  ## start the local cluster and services; writes .rig/env
	$(PY) tests/rig/rig.py up

rig-down:  ## stop exactly what rig-up started and remove its state
	@if [ -x $(PY) ]; then $(PY) tests/rig/rig.py down; else python3 tests/rig/rig.py down; fi

rig-status:
	$(PY) tests/rig/rig.py status

lint: venv  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv  ## mypy --strict: the three packages, then the benchmarks and the tests (rig included)
	$(BIN)/mypy
	$(BIN)/mypy bench tests

crds: venv  ## regenerate crds/*.yaml from the API models
	$(PY) -m datamanager.api.crd crds
	$(PY) -m datamanager.api.crd charts/datamanager/crds

test-unit: venv  ## unit tier only (no services)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv rig-build  ## integration tier on the rig's services
	tests/rig/with-rig.sh $(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv rig-build  ## e2e tier on the rig's control plane and process node
	tests/rig/with-rig.sh $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test: venv rig-build lint typecheck  ## everything: lint, types, unit, integration, e2e (starts and stops the rig)
	tests/rig/with-rig.sh $(BIN)/pytest tests $(PYTEST_ARGS)

mutation: venv  ## mutation testing of the pure modules (not in `make test`: minutes); MODULES=planning,cron: a subset
	$(PY) tests/mutation/run.py mutation --config $(MUTATION_CONFIG) --modules '$(MODULES)'

coverage: venv  ## the lines of each pure module the unit tier alone runs (>= 95 % each); MODULES=... a subset
	$(PY) tests/mutation/run.py coverage --config $(MUTATION_CONFIG) --modules '$(MODULES)'

test-kind: venv  ## the e2e suite on a kind cluster (needs Docker and kind)
	$(BIN)/pytest tests/kind $(PYTEST_ARGS)

bench: venv rig-build  ## every benchmark under bench/ (prints ratios against their baselines)
	tests/rig/with-rig.sh bash -c 'for b in bench/*.py; do $(PY) -P "$$b" || exit 1; done'

demo: venv rig-build  ## the whole system on the local cluster: see README
	$(PY) -m demo

clean:  ## stop the rig and remove local build output (the rig binary cache stays)
	-$(MAKE) rig-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist
