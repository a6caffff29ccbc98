# RBDM Studio: `make run` starts the app, `make test` runs the tests. Both set everything up first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-avx2 install system-deps lint typecheck bench lock clean

run: $(STAMP)
	$(BIN)/rbdm gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# The TensorFlow tests once more with oneDNN limited to AVX2 kernels: trained-model results differ between
# CPUs (oneDNN picks kernels by instruction set), so a claim that holds on one machine's kernels only
# fails here before it lands (CI runs it after `make test`).
test-avx2: $(STAMP)
	QT_QPA_PLATFORM=offscreen ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -m tf -q

install: $(STAMP)

system-deps:
	@scripts/install-system-deps.sh

# The virtual environment, rebuilt when the lock or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml scripts/install-system-deps.sh
	@scripts/install-system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check analysis tracking rbdm_gui tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.core

# Regenerate requirements.lock from requirements/top.txt (needs the network).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip==25.3 && .lock-venv/bin/pip install --quiet -r requirements/top.txt setuptools==84.2.1
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/pip freeze --all | grep -v -E '^(tensorflow|pip)=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis
