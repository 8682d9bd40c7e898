# kizuna — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := deploy/local/stack.sh
PYTEST_ARGS ?=

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,rocksdb]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install kizuna with its dev tools

infra-up: venv ## start local Kafka (KRaft) + Redis and create the topics
	PYTHON=$(PY) $(STACK) up

infra-down: ## stop local Kafka + Redis
	PYTHON=$(PY) $(STACK) down

infra-status: ## show whether local Kafka + Redis are up
	PYTHON=$(PY) $(STACK) status

run: venv ## the whole pipeline on a local Kafka + Redis (grows as services land)
	PYTHON=$(PY) deploy/local/run.sh

test: venv ## set up, start Kafka + Redis, run unit + integration tests, stop the servers
	deploy/local/promtool.sh ensure >/dev/null || [ $$? -eq 3 ]  # 3: no apt here; tests skip
	PYTHON=$(PY) $(STACK) up
	@set -o pipefail; eval "$$(PYTHON=$(PY) $(STACK) env)"; \
	  $(PY) -m pytest tests $(PYTEST_ARGS); rc=$$?; \
	  PYTHON=$(PY) $(STACK) down; exit $$rc

unit: venv ## unit tests only (no servers, seconds)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: venv ## integration tests against the local stack (started if needed)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: venv ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy schemas runtime services simulator bench

format: venv ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: venv ## export JSON Schema files for upstream producers into schemas/json/
	$(PY) -m schemas.export

bench: infra-up ## run every benchmark against the local stack; report in bench/results/latest.md
	@eval "$$(PYTHON=$(PY) $(STACK) env)"; $(PY) bench/run.py

clean: infra-down ## stop servers and delete .local/ (Kafka + Redis data) and .venv/
	rm -rf .local $(VENV)

.PHONY: help venv infra-up infra-down infra-status run test unit integration lint format schemas bench clean
