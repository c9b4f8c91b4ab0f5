# The two commands a newcomer runs: `make demo` (the main job, end to end on a
# local registry) and `make test`. Both bring up the engine first.
VENV     ?= .venv
PYTHON   ?= python3
PORT     ?= 5000
REGISTRY ?= localhost:$(PORT)
IMAGE    ?= $(REGISTRY)/orch/demo:latest
BASE     ?= $(REGISTRY)/orch/busybox:stable
ORCH      = $(VENV)/bin/orch

.PHONY: venv engine demo test bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

engine:
	ORCH_REGISTRY_PORT=$(PORT) bash scripts/engine-up.sh

demo: venv engine
	$(ORCH) doctor --registry $(REGISTRY)

test: venv engine
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
