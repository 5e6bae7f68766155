# aiscale: `make report` renders the default report from the bundled demo data;
# `make test` runs the whole suite. Both create .venv and install everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install system-deps report test lint bench fuzz slow lab demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

report: install
	$(PY) -m aiscale.cli load data/demo --store reports/demo.store
	$(PY) -m aiscale.cli report --store reports/demo.store --notebook overview -o reports/overview.html

test: install system-deps lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=15

lint: install
	$(PY) -m ruff check aiscale tests benchmarks scripts

bench: install
	$(PY) benchmarks/run.py
	$(PY) benchmarks/platform_load.py

fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests -k fuzz

slow: install  # the long statistical-coverage runs (the CI suite runs smaller versions)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m slow tests

lab: install
	$(PY) -m pip install --quiet -e '.[lab]'
	$(VENV)/bin/jupyter lab notebooks/

demo: install
	$(PY) scripts/make_demo.py

clean:
	rm -rf $(VENV) reports/*.html reports/*.ipynb
