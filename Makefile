# medmec: `make demo` runs the platform on a local control plane, `make test` runs the tests.
# Both set up what they need: the virtualenv, the Python packages and the Go-built binaries
# (cached under $${XDG_CACHE_HOME:-~/.cache}/medmec, so only the first run builds them).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Python must not put the working directory on sys.path: the folder operator/ would
# shadow the standard library's `operator` (the code imports it as medmec.operator).
export PYTHONSAFEPATH := 1

.PHONY: help venv binaries image system-deps demo test test-unit test-e2e bench clean-cluster clean-cache

help:
	@echo "make demo    run medmec on a local control plane (builds binaries the first time)"
	@echo "make test    run the whole test suite, unit and end-to-end"
	@echo "make bench   run the benchmarks and print their ratios"

# setup.py compiles the dispatch router in place: an edit to it must build it again
$(STAMP): pyproject.toml setup.py workloads/dispatch/routing.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# setuptools' notice on every editable install ("Editable installation ... folders with
	@# the same name"): the README's troubleshooting covers the operator/ folder
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m medmec.protogen
	@touch $@

venv: $(STAMP)

binaries: venv
	$(BIN)/medmec cluster build

# the container images (medmec, pause, MinIO), built with podman and reused while their
# inputs are unchanged (cached under $${XDG_CACHE_HOME:-~/.cache}/medmec/images)
image: binaries system-deps
	$(BIN)/medmec image build

system-deps:
	bash e2e/system-deps.sh

demo: binaries image
	$(BIN)/python -m medmec.demo

test: binaries system-deps image
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv system-deps
	$(BIN)/python -m pytest -m 'not e2e' $(PYTEST_ARGS)

test-e2e: binaries
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

# retrain the diagnosis models (seeded) and write their cards; the imaging CNN goes to the cache
.PHONY: models
models: venv
	$(BIN)/python models/train.py --imaging

# GitOps CI check: server-side dry-run of every deploy/overlays/* against the control plane
# and each model version checked against the store (KUBECONFIG and MEDMEC_STORE_* when set,
# else the local control plane and a temporary MinIO holding models/)
.PHONY: validate
validate: binaries
	$(BIN)/medmec gitops validate --local

bench: binaries
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-cluster: venv
	$(BIN)/medmec cluster down

clean-cache:
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/medmec"
