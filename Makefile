# Everyday commands. `make run` and `make test` work on a fresh machine: they create .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM := /usr/bin/chromium
# The tests that need no browser run in this many processes (pytest-xdist), each with its own
# test database; the browser tests, and the suite on PostgreSQL and Redis (one Redis for all),
# run in one.
WORKERS ?= 2

.PHONY: run test test-services test-cluster bench lint format lock chromium nginx messages

# The first run installs for a few minutes: each step says what it does, pip shows each
# package it fetches (a progress bar per download on a terminal).
$(VENV)/.runtime: requirements.lock
	@test -x $(PY) || { echo "==> Creating the virtual environment in $(VENV)/"; $(PYTHON) -m venv $(VENV); }
	@echo "==> Installing KimiChat's dependencies (requirements.lock; a few minutes the first time)"
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -r requirements.lock
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	@echo "==> Installing the development tools (requirements-dev.lock)"
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -r requirements-dev.lock
	@touch $@

run: $(VENV)/.runtime
	@echo "==> Preparing the database (migrations)"
	@$(PY) manage.py migrate --noinput -v0
	@echo "==> Checking for answers left unfinished by a previous run"
	@$(PY) manage.py repair
	@echo "==> Collecting static files"
	@$(PY) manage.py collectstatic --noinput -v0
	@echo "==> Starting KimiChat"
	$(PY) -m kimichat.serve

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	}

# The cluster test puts Debian's nginx in front of the app processes (deploy/nginx/).
nginx:
	@test -x /usr/sbin/nginx || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx >/dev/null; \
	}

test: $(VENV)/.dev chromium nginx
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) manage.py makemigrations --check --dry-run -v0
	$(PY) -m pytest -m "not e2e" -n $(WORKERS)
	$(PY) -m pytest -m e2e

# The same suite on PostgreSQL and Redis (both must be running).
test-services: $(VENV)/.dev chromium
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kimichat} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(PY) -m pytest

# A cluster as deploy/ describes it, driven by Chromium through nginx: rolling restart,
# kill -9, Redis stopping (PostgreSQL where DATABASE_URL names it).
test-cluster: $(VENV)/.dev chromium nginx
	$(PY) -m pytest tests/e2e/test_cluster.py tests/e2e/test_resilience_servers.py tests/test_resilience.py tests/test_resilience_redis.py

bench: $(VENV)/.dev
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m bench.ttft
	$(PY) -m bench.capacity 100 200 500
	$(PY) -m bench.capacity --thinking 100 200
	$(PY) -m bench.extract
	$(PY) -m bench.retrieval
	$(PY) -m bench.quality bench/data/cranfield
	$(PY) -m bench.quality tests/data/zh-retrieval
	$(PY) -m bench.api
	$(PY) -m bench.hostile
	$(PY) -m bench.cluster

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(VENV)/.dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

lock: $(VENV)/.dev
	$(PY) tools/lock.py

# Update the Simplified Chinese catalogue after changing texts, then compile it (needs gettext).
messages: $(VENV)/.dev
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=staticfiles --ignore=bench --ignore=tests
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv
