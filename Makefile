# Two commands a new user needs: `make bench` and `make test`. Both set up .venv from nothing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Without this, pip may resolve an unpinned torch to a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0

.PHONY: setup bench test test-all test-gpu gate clean

setup: $(STAMP)

# A GPU user's interpreter already has a CUDA torch (and maybe mamba-ssm): the venv then sees
# the interpreter's packages and keeps them. Otherwise it gets the CPU build of torch.
$(STAMP): pyproject.toml
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
	  echo "using the interpreter's torch: $$($(PYTHON) -c 'import torch; print(torch.__version__)')"; \
	  $(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
	  $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip; \
	  $(PY) -m pip install -q "$(TORCH_CPU)"; \
	fi
	$(PY) -m pip install -q -e ".[dev,ray,embed]"
	@touch $@

bench: $(STAMP)
	$(VENV)/bin/lalm-bench run quick --out results/quick --overwrite
	$(VENV)/bin/lalm-bench report results/quick -o reports/quick

# The essential tests (under ~10 minutes on 2 CPU cores). Slow and GPU tests are marked.
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu" -q

test-all: $(STAMP)
	$(PY) -m pytest -m "not gpu" -q

test-gpu: $(STAMP)
	$(PY) -m pytest -m gpu -q

# Kernel-speed regression gate against the committed baseline (exit 1 on a real slowdown).
gate: $(STAMP)
	$(VENV)/bin/lalm-bench gate

clean:
	rm -rf $(VENV) build *.egg-info .benchmarks
