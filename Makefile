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

# Until the designer exists: import the examples and run one from the CLI.
run: install
	$(BIN)/taskloom import assets/examples/*.json
	$(BIN)/taskloom run hello

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: install
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

bench: install
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_validate.py
	$(BIN)/python bench/bench_logs.py
	$(BIN)/python bench/bench_scheduler.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
