# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast prepare bench clean-cache

# The venv is rebuilt only when a requirements file changes.
$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt -r requirements-test.txt
	# tinysoundfont declares pyaudio (for live playback we never use), which does not build here.
	$(PY) -m pip install --no-deps tinysoundfont==0.3.7
	# The library itself, editable, so scripts and notebooks outside the repo root import it.
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Builds the default dataset, models and projections when missing (progress bars), then the app.
prepare: install
	$(PY) -m crossmodal_core prepare

run: prepare
	$(PY) -m streamlit run app.py

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

bench: install
	$(PY) benchmarks/bench_linear.py
	$(PY) benchmarks/bench_deep.py
	$(PY) benchmarks/bench_app.py

clean-cache:
	rm -rf .crossmodal
