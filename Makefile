# aurora-restore: `make demo` runs a whole restore locally; `make test` runs lint and every test tier.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCAL_STAMP := $(VENV)/.installed-local-stamp
PYTEST_ARGS ?=

.PHONY: dev lint format test test-fast check-postgres demo chaos bench package schemas clean

define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aurora-restore needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): install python3-venv"; exit 1; }
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
endef

# Everything: the project, the local runtime, test and lint tools, Pulumi.
$(STAMP): pyproject.toml
	$(make_venv)
	@echo "installing aurora-restore with its dev and infra tools into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,infra]'
	@touch $(STAMP) $(LOCAL_STAMP)

# Just what the demo needs: the project and the local runtime (moto's server).
$(LOCAL_STAMP): pyproject.toml
	$(make_venv)
	@echo "installing aurora-restore and its local runtime into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local]'
	@touch $(LOCAL_STAMP)

dev: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint check-postgres
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

check-postgres: $(LOCAL_STAMP)
	@$(PY) -m aurora_restore.local.postgres


test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not e2e" $(PYTEST_ARGS)

demo: $(LOCAL_STAMP)
	@$(VENV)/bin/aurora-restore demo

chaos: $(LOCAL_STAMP)
	$(VENV)/bin/aurora-restore chaos $(CHAOS_ARGS)

bench: $(STAMP)
	$(PY) -m aurora_restore.bench $(BENCH_ARGS)

package: $(STAMP)
	$(PY) -m infra.package

schemas: $(STAMP)
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
