# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PLUGINS := $(sort $(wildcard plugins/runner-*))
# The venv is rebuilt when any distribution's metadata changes.
STAMP := $(VENV)/.installed
PYPROJECTS := core/pyproject.toml $(wildcard plugins/*/pyproject.toml) constraints.txt requirements-dev.txt

.PHONY: install demo test test-fast test-min lint typecheck pytest docs bench clean plugin-test

install: $(STAMP)

$(STAMP): $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -r requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e core $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

demo: install
	$(BIN)/runner run recipes/digits.toml

lint: install
	$(BIN)/ruff check core plugins tests bench tools
	$(BIN)/ruff format --check core plugins tests bench tools

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

# The inner loop: every test not marked slow (no training runs, no extra processes).
test-fast: install
	$(BIN)/pytest -m "not slow" -q

# The documentation site, strict: a broken link or API reference fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck pytest docs

# The core's tests at the lowest version of each dependency runner-core's metadata allows
# (constraints-min.txt), in their own venv, so the lower bounds in core/pyproject.toml stay true.
VENV_MIN ?= .venv-min
STAMP_MIN := $(VENV_MIN)/.installed
TEST_TOOLS_MIN := pytest hypothesis jsonschema

$(STAMP_MIN): core/pyproject.toml constraints-min.txt
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-min.txt -e core $(TEST_TOOLS_MIN)
	touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/python -m pytest core/tests -m "not slow" -q

# One plugin's own tests: make plugin-test plugin=datasets
plugin-test: install
	$(BIN)/pytest plugins/runner-$(plugin)

bench: install
	$(BIN)/python bench/step_overhead.py
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) $(VENV_MIN) runs site
