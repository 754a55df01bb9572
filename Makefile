# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The browser test drives Debian's Chromium (never a browser downloaded by a test tool).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint setup clean browser verdicts

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (adlgame needs Python 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/adlgame demo

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "error: the dashboard's browser test needs Debian's chromium: sudo apt-get install -y chromium chromium-driver"; exit 2; \
	fi

browser: $(CHROMIUM)

test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Refresh the packaged robustness verdicts of the default scenario (about 6 min on 2 cores);
# the demo, the compare report and the README quote them.
verdicts: $(STAMP)
	rm -rf .verdicts-run
	$(VENV)/bin/adlgame experiment robustness --quick --quiet --out .verdicts-run
	$(PY) -m experiments.studies.verdict_book .verdicts-run
	rm -rf .verdicts-run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
