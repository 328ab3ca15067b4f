# `make test` and `make train` set everything up themselves: a .venv with the project installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export JAX_PLATFORMS ?= cpu

.PHONY: test test-fast train recipe lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# the everyday tier: everything but the tests tests/conftest.py marks slow (about a minute)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

train: $(STAMP)
	$(BIN)/a2c-jax train --env CartPole-v1 --out runs/CartPole-v1 --overwrite

recipe: $(STAMP)
	$(BIN)/python benchmarks/recipe.py --seeds 0 --max-steps 50000 --out runs/recipe

# the linter, then the type checker over a2c_jax/ (configured in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/microbench.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .jax_cache .mypy_cache
