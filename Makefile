# data-manager: `make demo` shows the whole system, `make test` runs every test tier. Both set up what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=
MODULES ?=
# the pure modules under mutation testing and their coverage: the one list (tests/mutation/run.py reads it)
MUTATION_CONFIG := tests/mutation/modules.toml
# tests/unit/packaging/test_chart_docs.py runs helm-docs with the same flags
HELM_DOCS_FLAGS := --chart-search-root charts --sort-values-order file --skip-version-footer

.PHONY: help venv rig-build rig-up rig-down rig-status lint typecheck test test-unit test-integration \
        test-e2e test-kind crds bench demo clean image lock rig-image \
        crds-upgrade chart-docs mutation coverage

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

# The image the rig's node runs pods from (container mode, docs/rig.md), tagged per checkout so that rigs of
# several checkouts on one machine each run their own code (tests/rig/rig.py computes the same tag). Where
# Podman or runc is missing the rig runs pods as local processes instead, and this says why.
RIG_IMAGE := localhost/datamanager:rig-$(shell printf %s '$(CURDIR)' | sha256sum | cut -c1-8)
rig-image:
	@if command -v podman >/dev/null && command -v runc >/dev/null; then \
	  BUILDER=podman IMAGE=$(RIG_IMAGE) tests/rig/image.sh; \
	else echo "rig-image: skipped: podman or runc is not installed (make rig-build installs them with apt-get);" \
	  "the rig's pods will run as local processes, not as containers of the image"; fi

rig-up: venv rig-build rig-image  ## start the local cluster and services; writes .rig/env
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

image:  ## build the container image (IMAGE, default localhost/datamanager:dev; BASE_IMAGE to choose the base)
	tests/rig/image.sh

lock: venv  ## regenerate requirements.lock and build-requirements.lock (every file pinned by hash) from pyproject.toml
	$(BIN)/pip install -q 'uv==0.13.*'
	$(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	  --custom-compile-command 'make lock' -o requirements.lock
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile - --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	  --custom-compile-command 'make lock' -o build-requirements.lock

crds: venv  ## regenerate crds/*.yaml from the API models
	$(PY) -m datamanager.api.crd crds
	$(PY) -m datamanager.api.crd charts/datamanager/crds

crds-upgrade:  ## apply the chart's CRDs to the current kubectl context (before `helm upgrade`: Helm never upgrades CRDs)
	kubectl apply --server-side --force-conflicts -f charts/datamanager/crds/

chart-docs:  ## regenerate charts/datamanager/README.md from the values' comments (helm-docs)
	tests/rig/build.sh helm_docs
	. tests/rig/versions.env && "$${DATAMANAGER_RIG_CACHE:-$$HOME/.cache/datamanager-rig}/helm-docs-$$HELM_DOCS_VERSION/bin/helm-docs" \
	  $(HELM_DOCS_FLAGS)

test-unit: venv rig-build  ## unit tier only (no services; a few tests run the rig's built tools: promtool, helm-docs, argocd-check)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv rig-build  ## integration tier on the rig's services
	tests/rig/with-rig.sh $(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv rig-build rig-image  ## e2e tier on the rig's control plane and process node
	tests/rig/with-rig.sh $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test: venv rig-build lint typecheck rig-image  ## everything: lint, types, unit, integration, e2e (starts and stops the rig)
	tests/rig/with-rig.sh $(BIN)/pytest tests $(PYTEST_ARGS)

mutation: venv  ## mutation testing of the pure modules (not in `make test`: minutes); MODULES=planning,cron: a subset
	$(PY) tests/mutation/run.py mutation --config $(MUTATION_CONFIG) --modules '$(MODULES)'

coverage: venv  ## the lines of each pure module the unit tier alone runs (>= 95 % each); MODULES=... a subset
	$(PY) tests/mutation/run.py coverage --config $(MUTATION_CONFIG) --modules '$(MODULES)'

test-kind: venv  ## the e2e suite on a kind cluster (needs Docker and kind)
	$(BIN)/pytest tests/kind $(PYTEST_ARGS)

bench: venv rig-build  ## every benchmark under bench/ (prints ratios against their baselines)
	tests/rig/with-rig.sh bash -c 'for b in bench/*.py; do $(PY) -P "$$b" || exit 1; done'

demo: venv rig-build rig-image  ## the whole system on the local cluster: see README
	$(PY) -m demo

clean:  ## stop the rig and remove local build output (the rig binary cache stays)
	-$(MAKE) rig-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist
