# A fresh clone needs only `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-dask.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# Runs the bot on the embedded local exchange for enough trading days that entries, fills and
# exits happen. Its state lives under sim/demo, apart from paper or live state.
demo: $(STAMP)
	rm -rf sim/demo
	$(BIN)/python trading_bot.py --sim --days 20 --sim-start 2022-03-01 --sim-dir sim/demo
	$(BIN)/python report.py --log-dir sim/demo/logs

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) sim .pytest_cache .ruff_cache
