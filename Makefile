# The README names these targets. `make test` and `make demo` work on a fresh clone.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.codit-setup

.PHONY: setup test demo lint bench constraints clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU wheel of PyTorch; a bare `torch` would pull gigabytes of CUDA packages.
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	# constraints.txt: the exact versions the tests passed with (`make constraints` rewrites it)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,api,train,coin,ray,serve]'
	@touch $(STAMP)

# Two workers (pytest-xdist): CI has 2 vCPUs. tests/conftest.py keeps the tests that share a
# module fixture on one worker. `pytest -p no:xdist` runs them in one process.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

demo: setup
	$(BIN)/python examples/demo.py

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/decode_throughput.py

# Pin the current .venv's versions of codit's dependencies (after the tests pass on them).
constraints:
	$(BIN)/python scripts/constraints.py > constraints.txt

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
