# `make run` and `make test` work on a fresh machine: they create the virtualenv they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SAMPLE ?= samples/pge_share_my_data_2019-10-23.xml

.PHONY: run test lint bench certs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/espi summary $(SAMPLE)
	$(BIN)/python tools/run.py

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check espi appkit datacustodian thirdparty_app tests bench tools
	$(BIN)/ruff format --check espi
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_reader.py

certs: $(BIN)/.installed
	$(BIN)/python tools/make_certs.py var/certs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
