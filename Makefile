# Two entry points (see README): `make run` opens JupyterLab on the demo, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lint typecheck jstest pytest bench clean control-plane cluster cluster-down

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installing builds the lab extension from labextension/ (npm) when it is not built yet.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The lab extension, rebuilt when its sources change, and linked into the venv's JupyterLab.
LABEXT := jupyter_cloudml/labextension/package.json
LABEXT_SOURCES := $(shell find labextension/src labextension/style -type f) \
	labextension/package.json labextension/package-lock.json labextension/tsconfig.json
NODE_MODULES := labextension/node_modules/.package-lock.json

$(NODE_MODULES): labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(LABEXT): $(LABEXT_SOURCES) $(NODE_MODULES) $(VENV)/.installed
	cd labextension && PATH="$(abspath $(BIN)):$$PATH" npm run --silent build:prod
	PATH="$(abspath $(BIN)):$$PATH" jupyter labextension develop --overwrite . >/dev/null
	touch $@

# torch (CPU) for the distributed PyTorch tests, torch + scipy for --algorithm gp; users install their own.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "torch==2.13.0" numpy scipy
	touch $@

# The model servers' interpreter: kserve in its own venv, layered over the main one.
SERVING_VENV ?= .venv-serving
$(SERVING_VENV)/.cloudml-serving-env: $(VENV)/.installed jupyter_cloudml/serving/env.py
	$(BIN)/python -m jupyter_cloudml.serving.env $(SERVING_VENV)

run: $(VENV)/.installed $(LABEXT) $(SERVING_VENV)/.cloudml-serving-env
	CLOUDML_SERVING_PYTHON="$(abspath $(SERVING_VENV))/bin/python" $(BIN)/jupyter lab --ip=127.0.0.1 $(ROOT_FLAG) --notebook-dir=examples examples/demo.ipynb

lint: $(VENV)/.installed $(NODE_MODULES)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd labextension && npm run --silent lint:check

jstest: $(NODE_MODULES)
	cd labextension && npm test --silent

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed-test $(LABEXT) $(SERVING_VENV)/.cloudml-serving-env
	$(BIN)/python -m pytest -q -p no:cacheprovider

test: lint typecheck jstest pytest

# Kubernetes' own control plane (kube-apiserver, controller manager, scheduler, etcd), built from
# its Go modules into ~/.cache/jupyter-cloudml/control-plane/ (reused when there).
control-plane:
	bash tests/cluster/build.sh

# A real control plane and two process nodes on loopback, left running; prints `export KUBECONFIG=...`.
CLUSTER_DIR ?= .cluster
cluster: $(VENV)/.installed-test $(SERVING_VENV)/.cloudml-serving-env
	@cd tests && ../$(BIN)/python -m cluster up --dir ../$(CLUSTER_DIR)

cluster-down: $(VENV)/.installed
	@cd tests && ../$(BIN)/python -m cluster down --dir ../$(CLUSTER_DIR)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SERVING_VENV) $(SERVING_VENV).lock .pytest_cache .mypy_cache .ruff_cache
