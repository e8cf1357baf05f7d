# Every target installs what it needs; a second run only checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs less than the tests: `make demo` installs the extra `demo`
# only; `make test` installs `dev` (everything).
DEMO_STAMP := $(VENV)/.installed-demo
CHROMIUM := /usr/bin/chromium

.PHONY: demo demo-asgi test bench loadtest lint docs chromium postgres redis clean
NODE_STAMP := node_modules/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo]"
	touch $(DEMO_STAMP)

# DEMO_PORT and MAP_PORT choose other ports than 5000 and 5001.
demo: $(DEMO_STAMP)
	$(BIN)/python -m examples.hangzhou_demo

demo-asgi: $(DEMO_STAMP)
	$(BIN)/python -m examples.hangzhou_demo --asgi

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

chromium: $(CHROMIUM)

# Test-only JavaScript: axe-core for accessibility checks, and the peer
# banners the budget bench compares against.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# PostgreSQL tests need the local server (trust auth, database "test").
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start && \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

# The shared rate-limit storage tests use the local Redis (127.0.0.1:6379).
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp; \
	  for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done; }

test: $(STAMP) $(NODE_STAMP) chromium postgres redis
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src
	$(BIN)/mypy

# The documentation site, as Read the Docs builds it: warnings are errors.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs build/docs

bench: $(STAMP) $(NODE_STAMP) chromium postgres
	@command -v wrk >/dev/null && test -x /usr/bin/time || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk time; }
	$(BIN)/python -m bench

# The demo under gunicorn and uvicorn (2 workers each), PostgreSQL cut off
# for 10 s in the middle; writes its figures to docs/reliability.md. Not part
# of `make test`.
loadtest: $(STAMP) postgres
	$(BIN)/python -m bench.loadtest

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
