# One command to run the service, one to test it; both set up everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-instructions soak lint typecheck unit system-packages screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import retargeting, fastapi, sqlalchemy, pytest"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/retargeting migrate
	$(BIN)/retargeting serve --host 127.0.0.1 --port 8000

system-packages:
	./scripts/ensure-system-packages.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-packages lint typecheck
	$(BIN)/pytest

# Every benchmark of bench/ on this machine; prints each figure and writes BENCHMARKS.md.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' 2>&1 | grep -v "is ignored" || true
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) system-packages
	$(BIN)/python -m bench.run

# Instructions a batch event and a single-event request cost in-process (valgrind's callgrind): how
# code changes are judged, since throughput on this VM drifts. `make bench-instructions SRC=/path/to/other/src` compares.
SRC ?= src
bench-instructions: $(BENCH_STAMP)
	$(BIN)/python -m bench.instructions --src $(SRC)

# The chaos soak (tests/integration/test_chaos_soak.py) at a million interactions per database;
# `make test` runs it at 100,000. Figures are printed at the end.
SOAK_EVENTS ?= 1000000
soak: $(STAMP) system-packages
	RETARGETING_SOAK_EVENTS=$(SOAK_EVENTS) $(BIN)/pytest -q \
		tests/integration/test_chaos_soak.py

# The admin page with realistic data, at 1280x900, full page (headless Chromium, see tests/browser).
screenshot: $(STAMP) system-packages
	SCREENSHOT_PATH=docs/screenshot.png $(BIN)/pytest -q -s \
		tests/browser/test_screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
