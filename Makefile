# PayCRM: `make run` serves the demo, `make test` runs the suite.
# Needs only git, Python 3.11+ and Node/npm; everything else is installed here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup deps frontend migrate demo lint format schema clean

run: setup demo
	$(PY) manage.py runserver $(HOST):$(PORT)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

setup: deps frontend migrate

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalled only when the lock file or pyproject.toml changes.
$(VENV)/.stamp-deps: requirements.lock pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(PY) -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(PY) --no-deps -e .
	touch $@

deps: $(VENV)/.stamp-deps

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend: node_modules/.stamp

migrate: deps
	$(PY) manage.py migrate --noinput

# Adds the demo users and merchants when the database has none; prints sign-in details.
demo: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py load_screening_list --if-empty
	$(PY) manage.py seed_workflow
	$(PY) manage.py seed_settlements
	$(PY) manage.py seed_transactions
	$(PY) manage.py verify_audit_trail --records

lint: deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: deps
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# Refreshes requirements.lock from pyproject.toml.
lock: deps
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) node_modules staticfiles .pytest_cache .ruff_cache
