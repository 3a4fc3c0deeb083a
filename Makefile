# One command per habit. Each target creates the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: demo test lint bench gpg zstd clean

$(READY): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $(READY)

gpg:
	@command -v gpg >/dev/null || { echo "gpg is missing: install the gnupg package (apt install gnupg)"; exit 1; }

# The tests also restore with stock tools only: gpg | zstd -d | pg_restore.
zstd:
	@command -v zstd >/dev/null || { echo "zstd is missing: install the zstd package (apt install zstd)"; exit 1; }

demo: $(READY) gpg
	$(PY) -m backstop.demo

test: $(READY) gpg zstd
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(READY) gpg
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .bench cdk.out
