# `make run` and `make test` work on a fresh machine: they create the virtualenv they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SAMPLE ?= samples/pge_share_my_data_2019-10-23.xml

VENDOR  = thirdparty_app/static/vendor/uPlot.iife.min.js

.PHONY: run serve test lint bench certs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Charting for the pages, from the npm registry at build time (pages never load a CDN); npm ci
# also installs axe-core, which the browser tests inject into the pages they check.
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
	$(BIN)/ruff format --check espi appkit datacustodian thirdparty_app fakes tests bench tools
	$(BIN)/mypy

# Production: both apps under gunicorn with their queue workers (Procfile), on PostgreSQL and
# Redis; the environment they need: README, "Running in production".
serve: $(BIN)/.installed $(VENDOR)
	$(BIN)/python tools/serve.py

# `make bench` takes a few minutes; `make bench BENCH_SIZE=full` gives the README's figures
# (0.7 M and 3.5 M readings and up; an hour or so on two cores). The ingestion, API, webhook and worker benches
# need PostgreSQL (BENCH_POSTGRES, an admin URL) and Redis (BENCH_REDIS, a database of their
# own: it is emptied).
BENCH_SIZE ?= quick
ifeq ($(BENCH_SIZE),full)
BENCH_READER    = --meters 20,100 --scales 1,2,4 --repeat 2
BENCH_INGEST    = --meters 20 --scales 1,2,4
BENCH_CUSTODIAN = --repeat 5
BENCH_WEBHOOK   = --posts 5000 --servers 4x16,4x4 --profile
BENCH_WORKERS   = --customers 16 --days 365
else
BENCH_READER    = --meters 1 --repeat 1
BENCH_INGEST    = --meters 2 --scales 1,2,4
BENCH_CUSTODIAN = --repeat 3 --databases sqlite
BENCH_WEBHOOK   = --posts 1000 --servers 4x16 --profile
BENCH_WORKERS   = --customers 4 --days 90
endif

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_reader.py $(BENCH_READER)
	$(BIN)/python bench/bench_custodian.py $(BENCH_CUSTODIAN)
	$(BIN)/python bench/bench_ingest.py $(BENCH_INGEST)
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_webhook.py $(BENCH_WEBHOOK)
	$(BIN)/python bench/bench_workers.py $(BENCH_WORKERS)

certs: $(BIN)/.installed
	$(BIN)/python tools/make_certs.py var/certs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
