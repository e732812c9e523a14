# mPort self-service. `make run` starts the whole system locally; `make test` runs every test.
.DEFAULT_GOAL := help
SHELL := /bin/bash
# uv from PATH, or (right after `pip install uv`, before any shell rehash) as a module.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help install run test test-fast lint format bench definitions schemas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install uv if missing, then every workspace package (uv sync)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		{ echo "uv not found; installing it with pip"; python3 -m pip install --quiet uv; }
	$(UV) sync --frozen
	@# Bytecode for everything installed and our own code, once (later runs only check mtimes,
	@# ~2 s): where PYTHONDONTWRITEBYTECODE is set, every process start otherwise compiles its
	@# imports from source, ~3.5 s of CPU per service started (make run, make test, make bench).
	@$(UV) run --frozen python -m compileall -q -j 0 .venv/lib shared/src services >/dev/null || true

run: install ## start the whole system: portal on :8000, workers, simulators, demo data (Ctrl-C stops)
	$(UV) run --frozen python -m mport_shared.devstack

# Tests run in parallel, one worker per core (pytest-xdist): most of their time is spent starting
# processes and waiting on them. TEST_WORKERS=0 runs them in this process, one after the other.
TEST_WORKERS ?= auto

test: install ## run all tests (starts what they need; needs RabbitMQ and PostgreSQL, see README)
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

test-fast: install ## unit tests only (no broker, no database)
	$(UV) run --frozen pytest -m "not integration and not e2e and not browser"

lint: install ## ruff and mypy --strict
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy shared/src services/*/src

format: install ## reformat the code
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: install ## measure throughput and latency; prints figures and writes bench-results/*.json
	$(UV) run --frozen python -m tests.bench

definitions: install ## regenerate deploy/rabbitmq/definitions.json from the topology in code
	$(UV) run --frozen python -m mport_shared.messaging.topology > deploy/rabbitmq/definitions.json
	cp deploy/rabbitmq/definitions.json deploy/kubernetes/base/rabbitmq/definitions.json  # kustomize needs its own copy

schemas: install ## regenerate the events' JSON Schemas and AsyncAPI document under docs/events/
	$(UV) run --frozen python -m mport_shared.schemas docs/events

clean: ## remove local databases and logs (var/)
	rm -rf var test-artifacts bench-results
