# `make run` starts everything; `make test` runs the suite. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: install system-packages run test lint services db clean bench-identity bench-orders bench-catalog bench-imports

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

install: system-packages $(VENV)/.installed

# The SFTP tests run Debian's OpenSSH server; install it (as root) when missing.
system-packages:
	@test -x /usr/sbin/sshd || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq openssh-server >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null; }; }
	@# The backup tests archive a scratch PostgreSQL 15 cluster with pgBackRest.
	@command -v pgbackrest >/dev/null && test -x "$$(pg_config --bindir 2>/dev/null)/initdb" || \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq pgbackrest postgresql-15 >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq pgbackrest postgresql-15 >/dev/null; }; }

services: install  ## says, one line each, which service is down and how to start it
	@$(BIN)/flask --app wsgi services check

db: services  ## creates the database if missing and migrates it to the newest revision
	@$(BIN)/flask --app wsgi db ensure

run: db  ## gunicorn on $PORT, a worker, beat and Flower on 5555; Ctrl-C stops them all
	@mkdir -p var
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile -p $(PORT)

test: install
	$(BIN)/python -m pytest

bench-identity: install  ## what sign-in, tokens, API keys and PII encryption cost per request / value
	$(BIN)/python bench/identity.py
bench-orders: install  ## checkout-and-pay throughput and latency (BENCH_SECONDS, BENCH_CLIENTS)
	$(BIN)/python bench/orders.py

lint: install
	$(BIN)/ruff check .

bench-imports: install  ## 1M-row feed through the SFTP inbox, against a raw COPY + upsert floor
	$(BIN)/python -m bench.imports

clean:
	rm -rf $(VENV) var

# Catalog benchmark: a scratch database and Redis db 9, gunicorn serving, wrk loading (see bench/catalog.py).
.PHONY: bench-catalog
bench-catalog: install
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.catalog $(BENCH_ARGS)

# Backup benchmark: 1M products + 1M orders on a scratch cluster; backup, restore (RTO), RPO after SIGKILL.
.PHONY: bench-backups
bench-backups: install
	$(BIN)/python -m bench.backups $(BENCH_ARGS)
