# One entry point for developers and CI.
#   make venv        .venv with the package and its dev extras (re-run when pyproject.toml changes)
#   make lint        ruff over the code
#   make typecheck   mypy (strict) over the package
#   make test        every test: unit, service (SQLite and a private MariaDB), end-to-end (real uWSGI)
#   make deploy-dev  migrate a SQLite database under var/dev and run the development server on 127.0.0.1

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_DIR := var/dev
DEV_HOST ?= 127.0.0.1
DEV_PORT ?= 8070
PYTEST_ARGS ?=

.PHONY: venv lint typecheck test deploy-dev clean

venv: $(VENV)/.installed

# The stamp makes `make venv` a no-op until pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check app tests bench

typecheck: venv
	$(BIN)/mypy

test: venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The config file names only a SQLite path; JOBMON_CONFIG keeps a deployed /etc/jobmon/jobmon.toml out of it.
deploy-dev: venv
	mkdir -p $(DEV_DIR)
	test -f $(DEV_DIR)/jobmon.toml || printf '[server]\ndb_url = "sqlite:///%s/jobmon.sqlite"\n\n[client]\nservice_url = "http://%s:%s"\n' \
		"$(abspath $(DEV_DIR))" "$(DEV_HOST)" "$(DEV_PORT)" > $(DEV_DIR)/jobmon.toml
	JOBMON_CONFIG=$(DEV_DIR)/jobmon.toml $(BIN)/jobmon-server db upgrade
	JOBMON_CONFIG=$(DEV_DIR)/jobmon.toml $(BIN)/jobmon-server serve --host $(DEV_HOST) --port $(DEV_PORT)

clean:
	rm -rf $(DEV_DIR) .pytest_cache .mypy_cache .ruff_cache
