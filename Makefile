# The two commands: `make demo` and `make test`. Each creates .venv with python3 -m venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint bench clean sample-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install (and so rebuild the C core) whenever the build inputs change.
BUILD_INPUTS := pyproject.toml setup.py $(wildcard simlab/_csrc/*.c simlab/_csrc/*.h)

# Dependencies by use (pyproject.toml's extras): `pip install .` alone records, verifies,
# imports and replays. The demo draws its report's charts ([notebook]: matplotlib) and the
# benchmarks time training ([ml]) and sweeps ([sweep]), so demo, bench and sample-data
# install everything a user may run ([all]); the tests also need the test tools ([dev]).
$(STAMP_RUN): $(BIN)/python $(BUILD_INPUTS)
	$(BIN)/pip install -q -e ".[all]"
	touch $@

$(STAMP_DEV): $(BIN)/python $(BUILD_INPUTS)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/python -m simlab.demo

test: $(STAMP_DEV)
	$(BIN)/ruff check simlab tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP_DEV)
	$(BIN)/ruff check simlab tests benchmarks

bench: $(STAMP_RUN)
	$(BIN)/python -m benchmarks

# The notebooks' sample recording (data/README.md): 600 simulated s of BTC-USDT, ~1.3 MB.
sample-data: $(STAMP_RUN)
	rm -rf data/sample
	$(BIN)/python data/make_sample.py --out data/sample

clean:
	rm -rf $(VENV) demo-output benchmarks/out
