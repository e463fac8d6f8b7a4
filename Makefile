# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offscreen rendering through EGL (Mesa) so no X server is needed.
export VTK_DEFAULT_OPENGL_WINDOW ?= vtkEGLRenderWindow
export PYVISTA_OFF_SCREEN ?= true

.PHONY: demo test lint bench validate clean drill study replay

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

# The worked example of each mode on the synthetic city (README: Drills, What-if ensembles,
# Incident replay). Each replaces its own output folder under runs/.
drill: $(VENV)/.installed
	$(BIN)/citytwin drill run scenarios/data/drill_gas_leak.yaml \
	    --players scenarios/data/drill_gas_leak_players.yaml --out runs/drill_gas_leak --overwrite

study: $(VENV)/.installed
	$(BIN)/citytwin study run scenarios/data/study_gas_leak.yaml --out runs/study_gas_leak

replay: $(VENV)/.installed
	$(BIN)/citytwin demo --out runs/demo --quiet
	$(BIN)/citytwin replay export runs/demo/archive.sqlite --out runs/incident \
	    --format parquet --overwrite
	$(BIN)/citytwin replay run runs/incident --rulebook scenarios/data/rulebook_revised.yaml \
	    --remove ch4-wells:GN00046 --add 400870,3400402 --combined \
	    --out runs/incident_replay --overwrite

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/perf/run_all.py

validate: $(VENV)/.installed
	$(BIN)/python benchmarks/validation/run_all.py

clean:
	rm -rf runs .pytest_cache
