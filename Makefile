# Quick start:  make bench   (installs everything, runs the default benchmark, writes results/<run_id>/report.html)
#               make test    (installs everything, runs lint, type checks and the whole test suite)
# Everything installs into .venv (Python) and via apt-get (Debian packages listed in deps/apt-packages.txt).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
APT_STAMP := $(VENV)/.apt-$(shell md5sum deps/apt-packages.txt 2>/dev/null | cut -c1-12)
PIP_STAMP := $(VENV)/.pip-$(shell cat pyproject.toml requirements.lock 2>/dev/null | md5sum | cut -c1-12)
# The Node.js implementation (targets/node): its packages come from its lock file, with `npm ci`.
NODE_DIR := targets/node
NPM_STAMP := $(NODE_DIR)/node_modules/.npm-$(shell md5sum $(NODE_DIR)/package-lock.json 2>/dev/null | cut -c1-12)
# The Go implementation (targets/go): built offline from Debian's Go packages by its build script.
GO_DIR := targets/go
GO_BIN := $(GO_DIR)/bin/library-grpc-go
BENCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: deps bench test lint typecheck pytest nodetest clean lock

deps: $(APT_STAMP) $(PIP_STAMP) $(NPM_STAMP) $(GO_BIN)

$(APT_STAMP):
	@mkdir -p $(VENV)
	@if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	packages="$$(grep -v '^\s*#' deps/apt-packages.txt | xargs)"; \
	echo "apt-get install $$packages"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$packages
	@rm -f $(VENV)/.apt-* && touch $@

$(PIP_STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev,vm]'
	@rm -f $(VENV)/.pip-* && touch $@

$(NPM_STAMP): $(APT_STAMP)
	@# Debian's nodejs comes without npm (its own package); NodeSource's nodejs bundles it and conflicts with it.
	@if ! command -v npm >/dev/null; then if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm; fi
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@rm -f $(NODE_DIR)/node_modules/.npm-* && touch $@

$(GO_BIN): $(APT_STAMP) $(wildcard $(GO_DIR)/*.go) $(GO_DIR)/build.sh proto/library.proto
	$(GO_DIR)/build.sh

bench: deps
	$(VENV)/bin/bench run $(BENCH_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/bench codegen --check

typecheck: deps
	$(VENV)/bin/mypy

pytest: deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The Node implementation's own unit tests (node's built-in runner); its conformance runs in pytest.
nodetest: deps
	cd $(NODE_DIR) && node --test test/

test: lint typecheck nodetest pytest

# Refresh requirements.lock from the current venv (after changing dependencies in pyproject.toml).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(NODE_DIR)/node_modules $(GO_DIR)/bin $(GO_DIR)/.build
