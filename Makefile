# Two commands for a new user: `make demo` and `make test`. Both set up first.
# The fast loop while changing code (DEVELOPMENT.md): `make check` (seconds) and `make unit`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OPA := .bin/opa

.PHONY: setup demo test check unit lint policy-test serve bench lock clean dist

setup: $(VENV)/.installed  # what `make demo` needs: the locked stack and OPA (helm and Regal: `make test`)
	@scripts/ensure-opa.sh
	@scripts/ensure-opa-inproc.sh  # OPA in process (.bin/libpolicygate_opa.so); without Go: a warning, HTTP engine

# Exactly the locked stack (versions and hashes: requirements-dev.lock), then policygate itself.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

lock:  # refresh requirements*.lock from pyproject.toml (uv, pinned); commit both
	scripts/lock.sh

demo: setup
	$(VENV)/bin/policygate demo

policy-test: setup
	$(OPA) check --strict rego/
	$(OPA) test rego/ -v --coverage --format=json > .policygate-coverage.json || { $(OPA) test rego/ -v; exit 1; }
	@$(PY) -c "import json; c=json.load(open('.policygate-coverage.json')); print(f\"opa test: all policy tests passed; coverage {c['coverage']:.1f}%\")"
	@rm -f .policygate-coverage.json

test: setup policy-test check  # check first: seconds, before the slow parts
	@scripts/ensure-helm.sh  # the chart's tests run helm lint and helm template (deploy/helm)
	@scripts/ensure-regal.sh  # OPA's Rego linter, configured in .regal/config.yaml
	.bin/regal lint rego/
	@scripts/ensure-postgres.sh  # the decision-log tests run on PostgreSQL too (a failure, never a skip)
	@scripts/ensure-chromium.sh  # the console's pages are tested in a real browser (a failure, never a skip)
	$(VENV)/bin/pytest --cov --cov-report=term:skip-covered  # the TOTAL line is the README's coverage figure
	POLICYGATE_ENGINE=http $(VENV)/bin/pytest -q $(HTTP_SUBSET)  # again on the HTTP engine (an OPA server)

# What `make test` runs a second time on the HTTP engine, as external OPA, sidecars and machines without
# Go run it: the API, fail-closed, signed bundles, scale-out and hot reload (the rest runs in process by
# default).
HTTP_SUBSET = tests/integration/test_api.py tests/integration/test_fail_closed.py \
	tests/integration/test_bundles.py tests/integration/test_scale_out.py \
	tests/integration/test_hot_reload.py

# Seconds, no services: formatting, lint, types (src and tests) and the import layers (docs/architecture.md).
check: $(VENV)/.installed
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

unit: $(VENV)/.installed  # tests/unit only: no OPA, no servers
	$(VENV)/bin/pytest tests/unit

lint:
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

serve: setup
	$(VENV)/bin/policygate serve

bench: setup  # policygate against raw OPA, side by side (docs/benchmarks.md); about 3 minutes
	$(PY) bench/run_all.py --markdown

dist:  # the wheel pipelines install (docs/ci-cd.md), from this checkout: needs Python and pip only
	rm -rf dist && $(PYTHON) -m pip wheel --no-deps -q -w dist .

clean:
	rm -rf $(VENV) .bin .policygate
