# Rempart — all set-up is done by these targets on a fresh machine.
# The interpreter the virtual environment is made from (picked once): see tools/pick-python.
ifndef PY
PY := $(shell sh tools/pick-python)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NATIVE := $(VENV)/.native
PYC := $(VENV)/.pyc
# The compiled modules (rempart.native.NATIVE_MODULES) are rebuilt when one of them changes.
NATIVE_SRC := setup.py src/rempart/native.py $(shell $(PY) src/rempart/native.py)
DEMO_DIR ?= demo-out

.PHONY: demo test lint bench bench-peers clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $(NATIVE)

# Rebuild the mypyc-compiled modules after an edit (REMPART_PURE=1: use the sources instead).
$(NATIVE): $(NATIVE_SRC) | $(STAMP)
	$(BIN)/pip install -q --no-deps -e .
	touch $(NATIVE)

# Bytecode of the sources written once, so that a run does not compile them again (where
# PYTHONDONTWRITEBYTECODE is set, as in many containers, Python never writes it itself).
$(PYC): $(shell find src -name '*.py') | $(STAMP)
	$(BIN)/python -m compileall -q src
	touch $(PYC)

demo: $(STAMP) $(NATIVE) $(PYC)
	$(BIN)/python -m rempart.demo --out $(DEMO_DIR)

test: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/mypy

bench: $(STAMP) $(NATIVE) $(PYC)
	$(BIN)/python bench/run.py

bench-peers: $(STAMP) $(NATIVE) $(PYC)
	bash bench/peers/run.sh

clean:
	rm -rf $(VENV) $(DEMO_DIR) build src/*.so src/rempart/*/*.so .pytest_cache .mypy_cache .ruff_cache
