# aurora-restore: `make demo` runs a whole restore locally; `make test` runs lint and every test tier.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCAL_STAMP := $(VENV)/.installed-local-stamp
PYTEST_ARGS ?=
# The tests run on one pytest-xdist worker per CPU, each test file on one worker (a module's fixtures are
# set up once); `make test PYTEST_WORKERS=0` runs them in this process (docs/performance.md, "The tests").
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile
PIP := $(PY) -m pip --quiet --disable-pip-version-check
# Only `make lock` needs uv; installing from a lock needs only pip.
UV_VERSION := 0.13.9
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)-stamp

.PHONY: dev lint format test test-fast check-postgres demo chaos bench package schemas lock clean

define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aurora-restore needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): install python3-venv"; exit 1; }
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
endef

# Installs a lock (every file checked against its hash), then the project itself, which adds nothing more;
# pip check finds a dependency pyproject.toml names that the lock lacks.
define install_locked
	@$(PIP) install --require-hashes -r $(1)
	@$(PIP) install --no-deps -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; echo "$(1) is behind pyproject.toml: run make lock"; exit 1; }
endef

# Everything: the project, the local runtime, test and lint tools, Pulumi.
$(STAMP): pyproject.toml requirements/dev.txt
	$(make_venv)
	@echo "installing aurora-restore with its dev and infra tools (requirements/dev.txt) into $(VENV) ..."
	$(call install_locked,requirements/dev.txt)
	@touch $(STAMP) $(LOCAL_STAMP)

# Just what the demo needs: the project and the local runtime (moto's server).
$(LOCAL_STAMP): pyproject.toml requirements/local.txt
	$(make_venv)
	@echo "installing aurora-restore and its local runtime (requirements/local.txt) into $(VENV) ..."
	$(call install_locked,requirements/local.txt)
	@touch $(LOCAL_STAMP)

$(UV_STAMP):
	$(make_venv)
	@$(PIP) install uv==$(UV_VERSION)
	@touch $(UV_STAMP)

dev: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint check-postgres
	$(VENV)/bin/pytest -q $(PYTEST_PARALLEL) $(PYTEST_ARGS)

check-postgres: $(LOCAL_STAMP)
	@$(PY) -m aurora_restore.local.postgres


test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not e2e" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

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

# Re-pins requirements/*.txt after a change to pyproject.toml, keeping the other pins;
# `make lock UPGRADE=1` moves every pin to the newest release allowed.
lock: $(UV_STAMP)
	$(PY) -m infra.lock $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
