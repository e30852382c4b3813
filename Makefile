# agentmem: `make demo` and `make test` set everything up in .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test test-long lint bench clean

install: $(STAMP)

# torch first, pinned to the CPU build on local disk, so nothing else pulls a CUDA build
$(STAMP): pyproject.toml $(PLUGINS)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,serve,mcp,langchain,langgraph,llamaindex,postgres]" $(foreach p,$(dir $(PLUGINS)),-e ./$(p))
	-@command -v apt-get >/dev/null && [ ! -d /usr/share/datasets/fashion-mnist ] && \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || true
	touch $(STAMP)

demo: install
	$(VENV)/bin/agentmem demo

test: install
	$(PY) -m pytest

test-long: install
	AGENTMEM_LONG=1 $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check agentmem tests plugins
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
