# Two promises: `make serve` and `make test` work on a fresh machine with Python, git and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,claude-code

.PHONY: serve test lint typecheck check bench clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/honk serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check honk_app tests bench
	$(BIN)/ruff format --check honk_app tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/webhook_ingest.py
	$(BIN)/python bench/agent_cache.py
	$(BIN)/python bench/time_to_pr.py

clean:
	rm -rf $(VENV) .honk .pytest_cache .mypy_cache .ruff_cache
