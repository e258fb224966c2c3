# Every target sets up its own virtual environment (.venv) first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo serve test lint bench clean

$(BIN)/ctmonitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

## demo: the main job offline, on the embedded SQLite database; outputs in out/
demo: $(BIN)/ctmonitor
	$(BIN)/ctmonitor demo --out out

## serve: the web interface over the demo's database (run `make demo` first) at http://127.0.0.1:8000; sign-up mails go to out/mail
serve: $(BIN)/ctmonitor
	$(BIN)/ctmonitor --db $(CURDIR)/out/demo.db serve --mail-folder $(CURDIR)/out/mail

# Two test workers per core (at most 8): many tests wait on a real subprocess, a paced
# registry stand-in or a browser, and a second worker uses the core meanwhile.
WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(8, 2 * (os.cpu_count() or 1)))")

## test: lint, then the whole suite on SQLite and PostgreSQL (127.0.0.1:5432, database test),
## two workers per core (pytest-xdist; every test has its own database, schema and ports)
# Bytecode is kept (in the ignored __pycache__ folders) even where PYTHONDONTWRITEBYTECODE
# is set: otherwise every process the tests start compiles the package again (~0.25 s
# each) and every test worker rewrites and compiles all test modules (~4 s each).
test: $(BIN)/ctmonitor lint
	$(BIN)/python -m compileall -q monitor migrations tests
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -n $(WORKERS)

lint: $(BIN)/ctmonitor
	$(BIN)/ruff check monitor tests migrations bench
	$(BIN)/lint-imports

## bench: speed and memory figures (not part of the tests)
bench: $(BIN)/ctmonitor
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/digest.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) out *.egg-info .pytest_cache .ruff_cache
