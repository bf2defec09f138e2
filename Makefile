# Two promises: `make serve` and `make test` work on a fresh machine with Python, git and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,claude-code
# Exact versions the tests passed with; pyproject.toml keeps the tested ranges. `make lock` renews it.
LOCK := constraints.txt

.PHONY: serve test lint typecheck check bench clean install lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Resolve the newest versions pyproject.toml allows in a scratch venv, and pin them all.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[$(EXTRAS)]'
	{ echo "# Written by 'make lock' from pyproject.toml's ranges; 'make' installs exactly these."; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } | LC_ALL=C sort -f > $(LOCK)
	rm -rf .lock-venv

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
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/agent_cache.py
	$(BIN)/python bench/time_to_pr.py
	$(BIN)/python bench/hostile_diff.py

clean:
	rm -rf $(VENV) .lock-venv .honk .pytest_cache .mypy_cache .ruff_cache
