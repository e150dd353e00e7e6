# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PLUGINS := $(sort $(wildcard plugins/runner-*))
# The venv is rebuilt when any distribution's metadata changes.
STAMP := $(VENV)/.installed
PYPROJECTS := core/pyproject.toml $(wildcard plugins/*/pyproject.toml) constraints.txt requirements-dev.txt

.PHONY: install demo test lint typecheck pytest docs bench clean plugin-test

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

# The documentation site, strict: a broken link or API reference fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck pytest docs

# One plugin's own tests: make plugin-test plugin=datasets
plugin-test: install
	$(BIN)/pytest plugins/runner-$(plugin)

bench: install
	$(BIN)/python bench/step_overhead.py
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) runs site
