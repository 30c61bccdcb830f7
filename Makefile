# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	# Notebook outputs never reach git (a test checks it too).
	-git rev-parse --git-dir >/dev/null 2>&1 && $(BIN)/nbstripout --install
	touch $@

## make demo: installs into .venv, then runs the demo on the embedded PostgreSQL.
demo: $(STAMP)
	env -u UPTIMELAB_DATABASE_URL -u DATABASE_URL $(BIN)/uptimelab demo

## make test: installs into .venv with the test extras, lints, then runs the whole suite: first on
## every core (each worker has its own database, and a test file runs whole on one worker, so its
## module fixtures are made once), then the timing-sensitive files (marked serial) alone.
test: $(STAMP) lint
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not serial" --durations=15
	$(BIN)/python -m pytest -m serial --durations=5

lint: $(STAMP)
	$(BIN)/ruff check uptimelab tests benchmarks
	$(BIN)/ruff format --check uptimelab tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/cycle_order.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
