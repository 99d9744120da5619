# Two commands: `make run` and `make test`. Each creates .venv when missing and
# installs the project into it; nothing else needs to be on the machine but
# Python (>= 3.11) and make.

PYTHON ?= python3
# Ports of `make run`: make run UI_PORT=8601 API_PORT=8766
UI_PORT  ?= 8501
API_PORT ?= 8765
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Import the examples, then serve everything on loopback: the web app on
# http://127.0.0.1:8501 (UI_PORT), the scheduler, and the REST API on
# 127.0.0.1:8765 (API_PORT).
run: install
	$(BIN)/taskloom import assets/examples/*.json
	$(BIN)/taskloom serve --ui-port $(UI_PORT) --port $(API_PORT)

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: install
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

# Every benchmark in bench/, each printing its table and whether its goal
# holds, then a summary; under ten minutes on a 2-core machine. Figures are
# collected in docs/benchmarks.md.
BENCHES := engine validate logs logpages shell python w2 dask scheduler designer runlog stores service writers

bench: install
	$(BIN)/python bench/bench_all.py $(BENCHES)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
