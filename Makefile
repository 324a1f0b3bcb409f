# `make run` starts everything; `make test` runs the suite. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: install system-packages run test test-fast lint services db clean bench-identity bench-orders bench-catalog bench-imports bench-ops bench-publisher

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

install: system-packages $(VENV)/.installed

# The SFTP tests run Debian's OpenSSH server, the alert-rule tests Debian's promtool (package prometheus),
# the fault suite its own redis-server, PostgreSQL cluster (initdb, pg_ctl) and RabbitMQ node, the backup
# tests pgBackRest on a scratch PostgreSQL 15 cluster;
# install them (as root) when missing.
system-packages:
	@test -x /usr/sbin/sshd || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq openssh-server >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null; }; }
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  test -x "$$(pg_config --bindir 2>/dev/null)/initdb" || missing="$$missing postgresql-15"; \
	  command -v rabbitmq-server >/dev/null || missing="$$missing rabbitmq-server"; \
	  command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	  test -z "$$missing" || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; }
	@command -v promtool >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; }

services: install  ## says, one line each, which service is down and how to start it
	@$(BIN)/flask --app wsgi services check

db: services  ## creates the database if missing and migrates it to the newest revision
	@$(BIN)/flask --app wsgi db ensure

run: db graphiql  ## gunicorn on $PORT, a worker, beat and Flower on 5555; Ctrl-C stops them all
	@mkdir -p var
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile -p $(PORT)

test: install
	$(BIN)/python -m pytest

# The pure tier (modules marked `pure`): no PostgreSQL, RabbitMQ or Redis, so their URLs point at a closed port.
# Only those modules are collected (importing the other 60 would cost more than running the tier).
CLOSED := 127.0.0.1:1
PURE = $(shell grep -rl --include='test_*.py' '^pytestmark = pytest.mark.pure' tests)
test-fast: install
	TEST_PG_SERVER=postgresql+psycopg2://postgres@$(CLOSED) TEST_BROKER_URL=amqp://guest:guest@$(CLOSED)// \
	  TEST_REDIS_URL=redis://$(CLOSED)/0 $(BIN)/python -m pytest -m pure -q $(PURE)

bench-identity: install  ## what sign-in, tokens, API keys and PII encryption cost per request / value
	$(BIN)/python -m bench.identity
bench-orders: install  ## checkout-and-pay under wrk: max paid orders/s, latency at 50 orders/s (BENCH_SECONDS, BENCH_RATE)
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.orders

lint: install
	$(BIN)/ruff check .

bench-imports: install  ## 1M-row feed through the SFTP inbox, against a raw COPY + upsert floor
	$(BIN)/python -m bench.imports

bench-publisher: install  ## registration p95 and registration->email p95, inline vs background publisher, quiet and busy disk
	$(BIN)/python -m bench.publisher

bench-ops: install  ## task metrics' cost in a worker, and a /metrics scrape against /healthz (BENCH_TASKS, BENCH_SCRAPES)
	$(BIN)/python -m bench.ops

clean:
	rm -rf $(VENV) var

# Fault suite at full size (docs/faults.md): prints the table of what each fault lost, doubled or left stuck.
.PHONY: chaos bench-vhost
chaos: install
	CHAOS_SCALE=full $(BIN)/python -m pytest tests/faults -q -p no:cacheprovider
bench-vhost: install  ## what a test run's RabbitMQ vhost costs the broker: seconds to be ready, file handles
	$(BIN)/python -m bench.vhost

# Catalog benchmark: a scratch database and Redis db 9, gunicorn serving, wrk loading (see bench/catalog.py).
.PHONY: bench-catalog
bench-catalog: install
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.catalog $(BENCH_ARGS)

# Mixed load (docs/load.md): the spec's mix over 1,000 connections at fixed rates, per gunicorn worker class.
.PHONY: bench-load
bench-load: install  ## BENCH_SECONDS, BENCH_RATES, BENCH_WORKER_CLASS (e.g. gthread:2x8,gevent:2,sync:4) rerun pieces
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.load $(BENCH_ARGS)

# Retention benchmark: 1M expired orders purged while wrk measures checkout (see bench/retention.py).
.PHONY: bench-retention
bench-retention: install
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.retention $(BENCH_ARGS)

# The schema fuzzer over every operation as guest, customer, staff and admin (tests/fuzz); `make test` runs a small budget.
.PHONY: fuzz
fuzz: install  ## a deep budget (FUZZ_CASES per operation and caller, over 10,000 in all); prints the counts
	FUZZ_CASES=$(or $(FUZZ_CASES),50) $(BIN)/python -m pytest tests/fuzz -q -s -p no:logging

# GraphiQL for /graphql/ide (development only): its files unpacked from npm once, served by the app itself.
GRAPHIQL := var/graphiql
.PHONY: graphiql
graphiql: $(GRAPHIQL)/graphiql.min.js
$(GRAPHIQL)/graphiql.min.js:
	@command -v npm >/dev/null || { echo "npm is needed for GraphiQL's files (apt-get install npm); skipping"; exit 0; }; \
	  set -e; tmp=$$(mktemp -d); cd $$tmp; npm pack -q graphiql@3.8.3 react@18.2.0 react-dom@18.2.0 >/dev/null; \
	  for f in *.tgz; do tar xzf $$f; mv package $${f%.tgz}; done; mkdir -p $(CURDIR)/$(GRAPHIQL); \
	  cp graphiql-3.8.3/graphiql.min.js graphiql-3.8.3/graphiql.min.css react-18.2.0/umd/react.production.min.js \
	     react-dom-18.2.0/umd/react-dom.production.min.js $(CURDIR)/$(GRAPHIQL)/; rm -rf $$tmp

# GraphQL against REST and bare Flask (wrk), and the WebSocket gateway's memory and delivery latency.
.PHONY: bench-graphql bench-realtime
bench-graphql: install
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.graphql $(BENCH_ARGS)
bench-realtime: install
	$(BIN)/python -m bench.realtime $(BENCH_ARGS)

# Backup benchmark: 1M products + 1M orders on a scratch cluster; backup, restore (RTO), RPO after SIGKILL.
.PHONY: bench-backups
bench-backups: install
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk))
	$(BIN)/python -m bench.backups $(BENCH_ARGS)
