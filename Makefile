# Two entry points (see README): `make run` opens JupyterLab on the demo, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# torch (CPU) for the distributed PyTorch tests, torch + scipy for --algorithm gp; users install their own.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "torch==2.13.0" numpy scipy
	touch $@

run: $(VENV)/.installed
	$(BIN)/jupyter lab --ip=127.0.0.1 $(ROOT_FLAG) --notebook-dir=examples examples/demo.ipynb

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -p no:cacheprovider

test: lint typecheck pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
