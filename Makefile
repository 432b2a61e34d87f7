# tasktable: the two commands of the quick start are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run example test test-django6 test-full lint format bench clean-venv

## An editable install has no bytecode until an import writes it, and none is written
## where PYTHONDONTWRITEBYTECODE is set (this CI machine): every command and worker would
## compile tasktable's modules again (80 ms of a worker's start). pip compiles a wheel's at
## install; this does the same for src/ (a stale file is recompiled in memory, never wrong).
BYTECODE = $(BIN)/python -m compileall -q src

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,mysql,dev]'
	$(BYTECODE)
	touch $(STAMP)

## Headless Chromium for the dashboard's browser tests: Debian's package, installed only
## when missing (Playwright drives it by path and never downloads a browser of its own).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

browser: $(CHROMIUM)

install: $(STAMP) $(CHROMIUM)

## The demo: a worker with 5 slots on the embedded SQLite default, and example tasks.
## (No browser needed: only the tests drive Chromium.)
run: $(STAMP)
	$(BIN)/tasktable demo

## The seed's example as an app: a small shop admin (Flask) and a worker, on
## http://127.0.0.1:5000/ (examples/shop; SHOP_PORT, SHOP_DATABASE_URL to change).
example: $(STAMP)
	$(BIN)/python -m examples.shop

## The whole suite: lint, types, then every test (PostgreSQL/MariaDB tests skip if absent,
## unless TASKTABLE_REQUIRE_SERVICES=1).
test: install lint
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-django6

## The Django suite again on Django 6 (django.tasks needs Python 3.12+), in .venv-django6, when
## pyenv has a Python 3.12+ (or DJANGO6_PYTHON names one); without one it says so and succeeds:
## the suite above ran on the django-tasks backport.
DJANGO6_VENV := .venv-django6
DJANGO6_PYTHON ?= $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.1[2-9]*/bin/python)))

$(DJANGO6_VENV)/.installed-stamp: pyproject.toml
	test -x $(DJANGO6_VENV)/bin/python || $(DJANGO6_PYTHON) -m venv $(DJANGO6_VENV)
	$(DJANGO6_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DJANGO6_VENV)/bin/python -m pip install --quiet -e '.[postgres,mysql,dev]' 'Django>=6'
	touch $@

test-django6: install
ifeq ($(DJANGO6_PYTHON),)
	@echo "test-django6: skipped: no Python 3.12+ for Django 6 (pyenv has none; or set DJANGO6_PYTHON=/path/to/python3.12); the Django suite ran on the django-tasks backport."
else
	@$(MAKE) --no-print-directory $(DJANGO6_VENV)/.installed-stamp
	$(DJANGO6_VENV)/bin/python -m pytest tests/contrib/django
endif

## The reliability scenarios at full size.
test-full: install
	TASKTABLE_FULL=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean-venv:
	rm -rf $(VENV) .venv-django6

## Benchmarks (issue 6; see bench/README.md): BENCH_QUICK=1 for small sizes, PEERS=1 to also
## run procrastinate, pgqueuer, huey and django-tasks (installed into bench/.venv-peers).
PEERS_VENV := bench/.venv-peers
BENCH_PEERS := $(filter 1 yes true,$(PEERS))

$(VENV)/.bench-stamp: pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[postgres,mysql,dev,bench]'
	touch $@

$(PEERS_VENV)/.installed-stamp: bench/requirements-peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PY) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	touch $@

bench: $(VENV)/.bench-stamp $(if $(BENCH_PEERS),$(PEERS_VENV)/.installed-stamp)
	$(BYTECODE)
	$(BIN)/python -m bench $(if $(BENCH_PEERS),--peers)
