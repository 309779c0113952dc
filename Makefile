# `make run` and `make test` work on a fresh machine: they create the virtualenv they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SAMPLE ?= samples/pge_share_my_data_2019-10-23.xml

VENDOR  = thirdparty_app/static/vendor/uPlot.iife.min.js

.PHONY: run test lint bench certs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Charting for the pages, from the npm registry at build time (pages never load a CDN).
$(VENDOR): thirdparty_app/frontend/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix thirdparty_app/frontend --no-audit --no-fund --silent && \
	  mkdir -p thirdparty_app/static/vendor && \
	  cp thirdparty_app/frontend/node_modules/uplot/dist/uPlot.iife.min.js \
	     thirdparty_app/frontend/node_modules/uplot/dist/uPlot.min.css thirdparty_app/static/vendor/; \
	else echo "npm not found: pages will show tables instead of charts"; fi

run: $(BIN)/.installed $(VENDOR)
	$(BIN)/espi summary $(SAMPLE)
	$(BIN)/python tools/run.py

test: $(BIN)/.installed $(VENDOR)
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check espi appkit datacustodian thirdparty_app fakes tests bench tools
	$(BIN)/ruff format --check espi
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_reader.py

certs: $(BIN)/.installed
	$(BIN)/python tools/make_certs.py var/certs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
