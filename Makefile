# One entry point for developers and CI.
#   make venv        .venv with the package and its dev extras (re-run when pyproject.toml changes)
#   make lint        ruff over the code
#   make typecheck   mypy (strict) over the package
#   make check       everything CI runs after installing packages: lint, typecheck, lint-deploy, kubernetes, test, molecule
#   make test        every test: unit, service (SQLite and a private MariaDB), end-to-end (real uWSGI);
#                    tests/kubernetes runs in make kubernetes
#   make test-fast   unit and SQLite service tests without the slow-marked ones (under a minute on 2 cores)
#   make deploy      deploy the appliance on this machine (Ansible, inventories/local) and start it
#   make deploy-dev  migrate a SQLite database under var/dev and run the development server on 127.0.0.1
#   make lint-deploy yamllint and ansible-lint (production profile) over roles, playbooks, molecule
#   make kubernetes  render the Kubernetes manifests (playbooks/kubernetes.yml), validate them offline, policy tests
#   make molecule    the Molecule scenarios (docker host, database, full stack, Grid Engine) and the testbed tests
#   make fleet ACTION=check [FLEET_ARGS=...]   day-2 operations on the cluster nodes (fleet/run; docs/fleet.md)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_DIR := var/dev
DEV_HOST ?= 127.0.0.1
DEV_PORT ?= 8070
PYTEST_ARGS ?=

DEPLOY_VENV ?= .venv-deploy
DEPLOY_BIN := $(DEPLOY_VENV)/bin

.PHONY: check venv deploy-venv lint lint-deploy kubernetes typecheck test deploy deploy-dev molecule clean

check: lint typecheck lint-deploy kubernetes test molecule

venv: $(VENV)/.installed
deploy-venv: $(DEPLOY_VENV)/.installed

# Pinned ansible (12.x, with its bundled collections), ansible-lint, molecule, yamllint and pyinfra.
$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	test -x $(DEPLOY_BIN)/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_BIN)/python -m pip install --quiet -r requirements-deploy.txt
	touch $@

# The stamp makes `make venv` a no-op until pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check app tests bench fleet

lint-deploy: deploy-venv
	$(DEPLOY_BIN)/yamllint .
	PATH="$(abspath $(DEPLOY_BIN)):$$PATH" $(DEPLOY_BIN)/ansible-lint

typecheck: venv
	$(BIN)/mypy

# tests/kubernetes runs in `make kubernetes` (it needs the deploy venv's ansible-playbook).
test: venv
	$(BIN)/pytest -q --ignore=tests/kubernetes $(PYTEST_ARGS)

# The manifests rendered by the real playbook (deploy venv) into temporary directories, validated against the
# Kubernetes 1.30 and newest schemas offline (kubernetes-validate), and the policy tests. No cluster is used.
kubernetes: venv deploy-venv
	JOBMON_DEPLOY_BIN=$(abspath $(DEPLOY_BIN)) $(BIN)/pytest -q tests/kubernetes $(PYTEST_ARGS)

# For the edit-test loop: no MariaDB, no uWSGI, none of the slow-marked tests (make test runs them all).
.PHONY: test-fast
test-fast: venv
	$(BIN)/pytest -q -m "not mariadb and not e2e and not slow" --ignore=tests/kubernetes $(PYTEST_ARGS)

deploy: deploy-venv
	$(DEPLOY_BIN)/ansible-playbook playbooks/site.yml

# First the roles that can be tested alone (docker_host: the engine and the base image; jobmon_database:
# a MariaDB of its own from the same image), then the full stack, whose verify step runs a client workflow
# from the project's venv; the grid_engine scenario then runs a workflow through the testbed's qsub, and
# the testbed tests drive Grid Engine directly. Later scenarios reuse what earlier ones built.
MOLECULE := PATH="$(abspath $(DEPLOY_BIN)):$$PATH" $(DEPLOY_BIN)/molecule
molecule: venv deploy-venv
	$(MOLECULE) test -s docker_host
	$(MOLECULE) test -s jobmon_database
	$(MOLECULE) test
	$(MOLECULE) test -s grid_engine
	JOBMON_SGE_TESTBED=jobmon-sge $(BIN)/pytest -q tests/gridengine
	JOBMON_SGE_TESTBED=jobmon-sge $(BIN)/pytest -q tests/fleet

# pyinfra over the inventory's grid_engine_nodes: check, upgrade (FLEET_ARGS="--wheel PATH"), rollback,
# drain, undrain. INVENTORY defaults to inventories/local.
ACTION ?= check
INVENTORY ?= inventories/local
FLEET_ARGS ?=
.PHONY: fleet
fleet: deploy-venv
	DEPLOY_VENV=$(abspath $(DEPLOY_VENV)) fleet/run $(ACTION) -i $(INVENTORY) $(FLEET_ARGS)

# The config file names only a SQLite path; JOBMON_CONFIG keeps a deployed /etc/jobmon/jobmon.toml out of it.
deploy-dev: venv
	mkdir -p $(DEV_DIR)
	test -f $(DEV_DIR)/jobmon.toml || printf '[server]\ndb_url = "sqlite:///%s/jobmon.sqlite"\n\n[client]\nservice_url = "http://%s:%s"\n' \
		"$(abspath $(DEV_DIR))" "$(DEV_HOST)" "$(DEV_PORT)" > $(DEV_DIR)/jobmon.toml
	JOBMON_CONFIG=$(DEV_DIR)/jobmon.toml $(BIN)/jobmon-server db upgrade
	JOBMON_CONFIG=$(DEV_DIR)/jobmon.toml $(BIN)/jobmon-server serve --host $(DEV_HOST) --port $(DEV_PORT)

clean:
	rm -rf $(DEV_DIR) .pytest_cache .mypy_cache .ruff_cache
