# AlmenFlow: `make run` (demo web app on SQLite) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000
export ALMENFLOW_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: install run demo test test-sqlite test-postgresql lint unit browser-deps pg-deps npm bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) npm

# Front-end packages (bpmn-js, properties panel, axe-core, esbuild) come from npm, never from the repo;
# esbuild bundles webapp/frontend/ into webapp/static/vendor/ (git-ignored, rebuilt when sources change).
NODE_STAMP   := node_modules/.package-lock.json
VENDOR_STAMP := webapp/static/vendor/.built
FRONTEND     := $(wildcard webapp/frontend/*.js webapp/frontend/*.mjs webapp/frontend/*.css)

npm: $(VENDOR_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null; fi
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

$(VENDOR_STAMP): $(NODE_STAMP) $(FRONTEND)
	node webapp/frontend/build.mjs

# Browser tests drive Debian's Chromium (Playwright's own browser download is not available here).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium + chromium-driver (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# PostgreSQL's server binaries (initdb, pg_ctl) for the throwaway server the tests start when nothing answers
# on 127.0.0.1:5432 (tests/databases.py); installed only when both are missing.
pg-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 \
	  && ! $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
	  echo "installing postgresql (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

demo: install
	$(BIN)/almenflow demo

run: install
	$(BIN)/almenflow demo
	$(BIN)/almenflow serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check engine webapp tests bench
	$(BIN)/mypy

# The whole suite twice: on SQLite files, then on PostgreSQL (a fresh database per test).
test: install browser-deps pg-deps lint
	$(BIN)/pytest -q --db=sqlite
	$(BIN)/pytest -q --db=postgresql

test-sqlite: install browser-deps
	$(BIN)/pytest -q --db=sqlite

test-postgresql: install browser-deps pg-deps
	$(BIN)/pytest -q --db=postgresql

# Every speed target of issue 7 side by side (several minutes; writes docs/benchmarks.md). bench-quick runs
# every row at small sizes in under a minute and fails only on errors, never on timings (CI may run it).
bench: install
	$(BIN)/python -m bench.run

bench-quick: install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache test-artifacts
