# One command for each job. `make demo`: set up, build the image, create a function, invoke it.
# `make test`: set up, build every runtime image, run the linters and the whole test suite.
# `make podman-test`: the engine tests (pytest -m engines) again, against rootless Podman.
PYTHON ?= python3
VENV := .venv
LRUN := $(CURDIR)/$(VENV)/bin/lrun
DEMO := build/demo

.PHONY: setup images demo test podman-test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v mmdebstrap >/dev/null || { \
	  echo "installing mmdebstrap (builds runtime images from Debian packages)"; \
	  apt-get update -qq && apt-get install -y -qq mmdebstrap >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

images: setup
	$(LRUN) runtimes build

demo: setup
	rm -rf $(DEMO)
	$(LRUN) init python $(DEMO)
	cd $(DEMO) && $(LRUN) invoke hello --payload '{"name": "demo"}'

lint: setup
	$(VENV)/bin/ruff check orchestrator tests bench
	$(VENV)/bin/ruff format --check orchestrator tests bench
	$(VENV)/bin/mypy

test: images lint
	$(VENV)/bin/python -m pytest

podman-test: images
	bash .ci/podman-test

clean:
	rm -rf $(VENV) build
