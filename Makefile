# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint format bench bench-scale wrk screenshots periodic chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(INSTALLED)

# Serves the app on http://127.0.0.1:$(PORT) with daphne on the embedded default (SQLite,
# in-process cache and channel layer, eager Celery). DEBUG comes from the environment
# (default 0, as in production: branded error pages, no URL list on a 404);
# `DEBUG=1 make run` for Django's debug pages, `PORT=8080 make run` for another port.
PORT ?= 8000
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install chromium
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium through Playwright (Playwright's own
# browser download cannot work offline).
chromium:
	@test -x /usr/bin/chromium || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The capacity picture on PostgreSQL + Redis in one run (docs/performance.md): throughput,
# added latency and CPU per request of each server, the write path, and K hosts x M
# writers with the capacity that follows (3 to 5 minutes, as the host goes; `bench/run.py --help` for
# shorter runs). `make bench-scale` runs the last part alone.
bench: install wrk
	$(BIN)/python bench/run.py

bench-scale: install wrk
	$(BIN)/python bench/scale.py

wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The periodic jobs (settle stale reservations, verify wallets) without a Celery beat.
periodic: install
	$(BIN)/python manage.py run_periodic_jobs

# Every page at desktop (1280x800), phone (390x844) and narrow (320x640) widths, with
# demo data and with a brand-new account's empty states, into docs/screenshots/ (a
# throwaway SQLite database; Chromium driven by Playwright). Fails if a page is wider
# than the screen.
screenshots: install chromium
	$(BIN)/python scripts/screenshots.py

# The real coding agents (Codex CLI, Claude Code, Gemini CLI, Qwen Code) that tests/agents
# drives, from npm at the versions pinned in tests/agents/package.json, outside the
# repository.
AGENTS_DIR ?= $(HOME)/.cache/nexai/agents
.PHONY: agents
agents:
	@mkdir -p $(AGENTS_DIR)
	@cmp -s tests/agents/package.json $(AGENTS_DIR)/package.json && test -x $(AGENTS_DIR)/node_modules/.bin/codex || { \
		echo "installing the coding agents into $(AGENTS_DIR)"; \
		cp tests/agents/package.json $(AGENTS_DIR)/package.json && \
		npm install --prefix $(AGENTS_DIR) --no-audit --no-fund --loglevel=error; }
