# One command per habit. Each target creates the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: demo test lint bench tools clean

$(READY): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $(READY)

tools:
	@command -v gpg >/dev/null || { echo "gpg is missing: install the gnupg package (apt install gnupg)"; exit 1; }
	@command -v zstd >/dev/null || { echo "zstd is missing: install the zstd package (apt install zstd)"; exit 1; }

demo: $(READY) tools
	$(PY) -m backstop.demo

test: $(READY) tools
	$(PY) -m pytest -q

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(READY) tools
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .bench cdk.out
