# `make train` and `make test` work on a fresh machine: each (re)creates .venv when it is missing
# or older than pyproject.toml, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test bench codegen check-generated lint-specs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# --force: `make train` owns runs/digits_cnn and replaces its own previous run there
train: $(STAMP)
	$(BIN)/nnspec train specs/digits_cnn.yaml --force

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

codegen: $(STAMP)
	$(BIN)/nnspec codegen

check-generated: $(STAMP)
	$(BIN)/nnspec codegen --check

lint-specs: $(STAMP)
	$(BIN)/nnspec lint specs/*

clean:
	rm -rf $(VENV) runs .pytest_cache
