# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offscreen rendering through EGL (Mesa) so no X server is needed.
export VTK_DEFAULT_OPENGL_WINDOW ?= vtkEGLRenderWindow
export PYVISTA_OFF_SCREEN ?= true

.PHONY: demo test lint bench validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/citytwin demo --out runs/demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/perf/run_all.py

validate: $(VENV)/.installed
	$(BIN)/python benchmarks/validation/run_all.py

clean:
	rm -rf runs .pytest_cache
