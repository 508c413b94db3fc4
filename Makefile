# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench compat docs lock clean load-sim graph-scale queue-latency

install: $(STAMP) node_modules/.bin/azurite-table

# Installs the exact versions in requirements.lock (compiled from requirements*.txt by `make lock`).
$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# Refresh requirements.lock after editing requirements*.txt: keeps every pin that still fits;
# `make lock UPGRADE=1` moves every package to the newest version the ranges allow.
.venv-tools/.installed:
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/python -m pip install --quiet "pip-tools>=7.4,<8"
	touch $@

lock: .venv-tools/.installed
	.venv-tools/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		$(if $(UPGRADE),--upgrade) --output-file requirements.lock requirements-dev.txt

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

# The real handler in 1, 2, 4 and 8 worker processes against Azurite: throughput, conflicts, nothing lost or doubled.
load-sim: install
	$(PY) bench/load_sim.py --write docs/SCALE.md $(ARGS)

# The queue delivery option's added latency against Azurite: the queue hop, and the documented polling algorithm.
queue-latency: install
	$(PY) bench/queue_latency.py --write docs/SCALE.md $(ARGS)

# Reconciliation of 1,000 subscriptions through a local Resource Graph that enforces the documented quota.
graph-scale: install
	$(PY) bench/graph_scale.py --write docs/SCALE.md $(ARGS)

# Microsoft's built-in definitions (../shared/data, where present) through import-policy: per-category coverage.
compat: install
	$(PY) -m shared.devtools.compat --write docs/POLICY-COMPATIBILITY.md $(ARGS)

docs: install
	$(PY) -m shared catalog --format md > docs/CONTROLS.md

clean:
	rm -rf $(VENV) .venv-c7n .venv-tools node_modules out .pytest_cache
