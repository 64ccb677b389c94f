# aurora-restore: `make demo` runs a whole restore locally; `make test` runs lint and every test tier.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: dev lint format test test-fast demo chaos bench package schemas clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aurora-restore needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): install python3-venv"; exit 1; }
	@echo "installing aurora-restore and its dev tools into $(VENV) ..."
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev,infra]'
	@touch $(STAMP)

dev: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not e2e" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/aurora-restore demo

chaos: $(STAMP)
	$(VENV)/bin/aurora-restore chaos $(CHAOS_ARGS)

bench: $(STAMP)
	$(PY) -m aurora_restore.bench $(BENCH_ARGS)

package: $(STAMP)
	$(PY) -m infra.package

schemas: $(STAMP)
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
