# Two set-up commands: `make demo` and `make test`. Both create .venv when missing and
# reinstall only when pyproject.toml changed (the stamp files below).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501
# torch is pinned to the builds that lie on this machine's disk; GPU users install the
# normal CUDA build of torch first (see README), which this step then leaves alone.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint format bench clean-venv browser latex

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install $(TORCH_PINS)
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e ".[dev]"
	touch $@

# Debian's chromium for the real-browser test (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's texlive for the test that compiles the paper tables (booktabs is in -recommended).
latex:
	@command -v pdflatex >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-latex-recommended >/dev/null)

demo: $(VENV)/.installed
	$(BIN)/medvision demo --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev browser latex
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/rater_load.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/metamorphic.py

clean-venv:
	rm -rf $(VENV)
