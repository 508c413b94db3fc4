# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench compat docs clean

install: $(STAMP) node_modules/.bin/azurite-table

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

node_modules/.bin/azurite-table: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m shared demo

test: install
	$(PY) -m pytest

# Cloud Custodian only for the side-by-side benchmark figure, in its own venv (never a project dependency).
.venv-c7n/.installed:
	$(PYTHON) -m venv .venv-c7n
	.venv-c7n/bin/python -m pip install --quiet c7n-azure
	touch $@

bench: install .venv-c7n/.installed
	$(PY) bench/run.py --c7n-python .venv-c7n/bin/python
	$(PY) bench/policy_bench.py --write docs/POLICY-COMPATIBILITY.md

# Microsoft's built-in definitions (../shared/data, where present) through import-policy: per-category coverage.
compat: install
	$(PY) -m shared.devtools.compat --write docs/POLICY-COMPATIBILITY.md $(ARGS)

docs: install
	$(PY) -m shared catalog --format md > docs/CONTROLS.md

clean:
	rm -rf $(VENV) .venv-c7n node_modules out .pytest_cache
