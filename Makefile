# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
# The app listens on this address. Anything but loopback serves it to the network: see the
# README, "Serving the app to others".
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: install run test test-fast prepare bench clean-cache lock check-lock

# The venv is rebuilt only when the lock (or the project) changes. The lock holds every package
# at the exact version that produced the committed results; --no-deps installs exactly that set
# (tinysoundfont declares pyaudio, for live playback we never use, which does not build here).
$(STAMP): $(LOCK) requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) tools/check_lock.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --no-deps -r $(LOCK)
	# The library itself, editable, so scripts and notebooks outside the repo root import it.
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

check-lock:
	$(PYTHON) tools/check_lock.py

# A fresh venv from requirements*.txt, frozen into the lock (torch stays the pinned CPU build).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -r requirements.txt -r requirements-test.txt
	.venv-lock/bin/python -m pip install --no-deps tinysoundfont==0.3.7
	{ sed -n '1,3p' $(LOCK); .venv-lock/bin/python -m pip freeze --all --exclude-editable \
	  | grep -v '^pip==' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock
	$(PYTHON) tools/check_lock.py

# Builds the default dataset, models and projections when missing (progress bars), then the app.
prepare: install
	$(PY) -m crossmodal_core prepare

run: prepare
	@case "$(HOST)" in 127.*|localhost|::1) ;; *) \
	  echo "WARNING: serving the app on $(HOST):$(PORT), reachable from the network."; \
	  echo "  Anyone who can reach it can upload feature files (stored in the cache, up to 512 MB each),"; \
	  echo "  start training and projections (CPU time), and browse every dataset, model and result here."; \
	  echo "  There is no login. Use HOST=127.0.0.1 (the default) to keep it on this machine.";; esac
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

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
