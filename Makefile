# The two commands a fresh machine needs (Python 3.11+ and pip only):
#   make demo   — set up, start a local AWS sandbox, plan → apply → plan → outputs, train a small model
#   make test   — set up with the test extra and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[sandbox,train]"

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,train,sagemaker]"

demo: install
	$(BIN)/python scripts/demo.py

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) plan-artifacts models build *.egg-info
