# pixseek: the two commands a newcomer needs are `make run PHOTOS=~/Pictures` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PHOTOS ?= $(HOME)/Pictures
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_DIR ?= data/demo
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.pixseek-installed

.PHONY: install install-test install-lint run demo test test-fast browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs pixseek (and its pinned torch/torchvision) into .venv.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $(INSTALLED)

# What `run` and `demo` need: an install no older than pyproject.toml. The install is editable,
# so edited sources need none; only new dependencies or entry points do (`make install` forces).
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# The accessibility tests inject axe-core (package.json, pinned in package-lock.json) into each
# page; without npm they fail and say to run `npm ci`.
install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund; \
	else echo "npm not found: the accessibility tests need axe-core (apt-get install npm; npm ci)"; fi

# mypy reads the packages' dependencies (torch, pydantic, ...), so the project installs too.
install-lint: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lint]'

# Index a folder of photos, then serve the search page at http://$(HOST):$(PORT)/
run: $(INSTALLED)
	$(BIN)/pixseek index "$(PHOTOS)"
	$(BIN)/pixseek serve --host $(HOST) --port $(PORT)

# No model weights? Train a small model on a synthetic world offline and search that; it ends
# with the commands that search it again (pixseek is $(BIN)/pixseek: make does not activate .venv).
demo: $(INSTALLED)
	$(BIN)/pixseek demo --dir $(DEMO_DIR) --host $(HOST) --port $(PORT)

# The whole test suite (SQLite and PostgreSQL, headless Chromium, slow tests included).
test: install-test
	$(BIN)/python -m pytest

test-fast: install-test
	$(BIN)/python -m pytest -m "not slow and not browser"

# The static gate CI runs before the tests: lint, formatting, types (config in pyproject.toml).
# Every step runs even when one fails, so one run shows all findings; any finding fails the target.
lint: install-lint
	@status=0; \
	echo "ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "mypy"; $(BIN)/mypy || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
