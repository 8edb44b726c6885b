# The two commands of the README: `make demo` runs the dashboard on the lab, `make test` checks everything.
# Both set up what they need: Debian's tools (as root) and a virtual environment in .venv.

VENV   := .venv
BIN    := $(VENV)/bin
PYTHON ?= python3
# checkov pins older boto3 and packaging than ours: it gets a virtual environment of its own, and
# tests/test_deploy.py runs it as a program.
CHECKOV := $(VENV)/checkov/bin/checkov

.PHONY: demo test lint unit bench screenshots system checkov clean

# make keeps a hang-up to itself and waits for the dashboard: hoshino-tui watches its terminal and
# quits (removing the lab) when it goes, so closing the window or killing the tmux session ends both.
demo: system $(VENV)/.installed
	$(BIN)/hoshino-tui --demo

# Everything on moto's server, then the end-to-end core (tests marked engines) on SeaweedFS.
test: system $(VENV)/.installed $(CHECKOV) lint
	$(BIN)/pytest
	HOSHINO_TEST_S3=seaweedfs $(BIN)/pytest -m engines

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(VENV)/.installed $(CHECKOV)
	$(BIN)/pytest -m "not root"

bench: system $(VENV)/.installed
	$(BIN)/python scripts/bench_tunnel.py
	$(BIN)/python scripts/bench_tui.py
	$(BIN)/python scripts/bench_ledger.py

screenshots: $(VENV)/.installed
	$(BIN)/python scripts/export_screenshots.py

checkov: $(CHECKOV)

$(CHECKOV):
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet 'checkov==3.3.30'

system:
	@scripts/install-system-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
