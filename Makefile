# Developer / CI entry points. Everything runs from a local virtualenv (.venv) that is created on
# demand and (re)installed whenever pyproject.toml or requirements.lock change.
#
#   make run            start the bot (settings from the environment / .env)
#   make demo           run the self-contained demo
#   make test           lint + tests on SQLite + tests on a throwaway PostgreSQL
#   make test-sqlite    tests on SQLite only
#   make test-postgres  tests on PostgreSQL only (scripts/with-postgres; or set TEST_DATABASE_URL)
#   make lint           ruff check, ruff format --check, mypy (strict)
#   make audit          known vulnerabilities in requirements.lock (pip-audit; CI runs it)
#   make bench          bench/run.py $(BENCH_ARGS)
#   make translations   extract bot/texts.py into bot/locales/bot.pot and update every .po
#   make compile-translations  compile the .po files into .mo (optional: read at start if fresh)
#   make clean          remove caches, build artefacts and the virtualenv
#
# Extra pytest arguments: make test PYTEST_ARGS='-k login -x'

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run demo test test-sqlite test-postgres lint audit bench clean \
	translations compile-translations

help:
	@sed -n 's/^#   //p' Makefile

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $@

run: $(STAMP)
	$(BIN)/python -m bot

demo: $(STAMP)
	$(BIN)/python -m bot demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot tests bench scripts examples

# Sequential on purpose (also under make -j): lint, then SQLite, then PostgreSQL.
test: $(STAMP)
	$(MAKE) lint
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

# TEST_DATABASE_URL is dropped so this run really is on SQLite even if a dev has it exported.
test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL $(BIN)/pytest -q $(PYTEST_ARGS)

# Starts a throwaway server and exports TEST_DATABASE_URL (or uses the one already set).
test-postgres: $(STAMP)
	bash scripts/with-postgres $(BIN)/pytest -q $(PYTEST_ARGS)

# Not part of `make test`: it asks PyPI, and a service that cannot answer fails nothing.
AUDIT_ARGS ?=
audit: $(STAMP)
	$(BIN)/python scripts/audit_deps.py $(AUDIT_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The catalogs (README, "Adding a sentence / adding a language"). No locations in the
# catalogs: they would change with every edit of bot/texts.py and make merges conflict.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k plural:1,2 --no-location --sort-by-file \
	  --width 100 --project phone-login-bot -o bot/locales/bot.pot .
	$(BIN)/pybabel update -i bot/locales/bot.pot -d bot/locales -D bot --width 100 --ignore-obsolete

compile-translations: $(STAMP)
	$(BIN)/pybabel compile -d bot/locales -D bot --statistics

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
