# One-command entry points for a fresh machine (Python 3.11, CPU only).
# torch is installed first from the local CPU wheel (torch==2.13.0); the project's
# range is satisfied by it, so nothing else pulls a CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/ldp-rec demo

test: setup
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info
