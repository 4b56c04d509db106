# The two Quick-start commands: `make demo` and `make test`. Both create the virtual environment
# on first use (pinned by constraints.txt) and reuse it afterwards.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(wildcard examples/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade -c constraints.txt -e '.[all,dev]'
	$(BIN)/python -m pip install -c constraints.txt -e examples/itemp-example-plugin
	touch $(STAMP)

demo: setup
	$(BIN)/itemp demo

test: setup
	$(BIN)/ruff check implicit_temperature tests benchmarks examples scripts
	$(BIN)/ruff format --check implicit_temperature tests benchmarks examples scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks

bench-quick: setup
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) build *.egg-info
