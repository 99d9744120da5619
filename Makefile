# Two commands: `make run` and `make test`. Each creates .venv when missing and
# installs the project into it; nothing else needs to be on the machine but
# Python (>= 3.11) and make.

PYTHON ?= python3
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
# http://127.0.0.1:8501, the scheduler, and the REST API on 127.0.0.1:8765.
run: install
	$(BIN)/taskloom import assets/examples/*.json
	$(BIN)/taskloom serve

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: install
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

bench: install
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_validate.py
	$(BIN)/python bench/bench_logs.py
	$(BIN)/python bench/bench_scheduler.py
	$(BIN)/python bench/bench_designer.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
