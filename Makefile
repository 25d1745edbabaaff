# soapattest bootstrap: Debian packages, a virtualenv, the project in it.
# `make demo` runs the product's main job, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config gcc python3-dev python3-venv
STAMP := $(VENV)/.bootstrap-stamp

.PHONY: demo test lint bootstrap bench clean

demo: $(STAMP)
	$(BIN)/soapattest demo

test: $(STAMP)
	$(BIN)/ruff check soapattest tests bench
	$(BIN)/mypy
	SOAPATTEST_REQUIRE_POSTGRES=1 SOAPATTEST_REQUIRE_SWTPM=1 $(BIN)/pytest -n 2 --timeout 600

lint: $(STAMP)
	$(BIN)/ruff check soapattest tests bench
	$(BIN)/mypy

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done  # bench_load.py: 10 minutes

bootstrap: $(STAMP)

$(STAMP): setup.cfg pyproject.toml tools/bootstrap-system.sh
	bash tools/bootstrap-system.sh $(DEB_PACKAGES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
