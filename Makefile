# Two commands a new user needs: `make bench` and `make test`. Both set up .venv from nothing,
# from the committed lock: requirements/lock.txt pins every dependency but torch exactly,
# requirements/torch.txt pins the CPU build of torch installed when the interpreter has none.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
TORCH  := requirements/torch.txt
# The installers are pinned too: a new pip or pip-tools can resolve the same ranges differently.
PIP_PIN       := pip==26.3
PIP_TOOLS_PIN := pip-tools==7.7.0
# The drift canary's venv: the newest releases pyproject's ranges allow.
LATEST := .venv-latest
# Where the CPU build of torch comes from (PyPI's torch is the CUDA build). Tried once, quickly:
# a machine that has the wheel at hand (pip's find-links) needs no index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIP   := --extra-index-url $(TORCH_INDEX) --retries 0 --timeout 10
# The lock is resolved for this interpreter version.
LOCK_PYTHON := 3.11

.PHONY: setup bench test test-all test-gpu test-latest gate lock clean

setup: $(STAMP)

# A GPU user's interpreter already has a CUDA torch (and maybe mamba-ssm): the venv then sees
# the interpreter's packages and keeps them. Otherwise it gets the CPU build of torch. The venv
# is made anew whenever the lock changes, so nothing outside the lock lingers in it.
# $(1): the venv folder.
define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || \
	  { echo "$(PYTHON) is older than Python 3.11, which the project needs" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(LOCK_PYTHON)")' || \
	  echo "warning: requirements/lock.txt was resolved for Python $(LOCK_PYTHON); if it does not install, make lock" >&2
	rm -rf $(1)
	@set -e; if $(PYTHON) -c "import torch" 2>/dev/null; then \
	  echo "using the interpreter's torch: $$($(PYTHON) -c 'import torch; print(torch.__version__)')"; \
	  $(PYTHON) -m venv --system-site-packages $(1); \
	  $(1)/bin/python -m pip install -q "$(PIP_PIN)"; \
	else \
	  $(PYTHON) -m venv $(1); \
	  $(1)/bin/python -m pip install -q "$(PIP_PIN)"; \
	  $(1)/bin/python -m pip install -q $(TORCH_PIP) -r $(TORCH); \
	fi
endef

$(STAMP): pyproject.toml $(LOCK) $(TORCH)
	$(call make_venv,$(VENV))
	$(PY) -m pip install -q --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check || echo "warning: the installed packages are inconsistent (see above)" >&2
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

# Drift canary: the essential tests in a separate venv holding the newest releases that
# pyproject's ranges allow (torch stays the one the venv got: the pinned CPU build, or the
# interpreter's own), so the
# next breaking release is seen here first. It prints how that venv differs from the lock.
test-latest:
	$(call make_venv,$(LATEST))
	$(LATEST)/bin/python -c "import torch; print('torch==' + torch.__version__)" >$(LATEST)/torch-kept.txt
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c $(LATEST)/torch-kept.txt \
	  -e ".[dev,ray,embed]"
	-$(LATEST)/bin/lalm-bench env --check
	$(LATEST)/bin/python -m pytest -m "not slow and not gpu" -q

# Kernel-speed regression gate against the committed baseline (exit 1 on a real slowdown).
gate: $(STAMP)
	$(VENV)/bin/lalm-bench gate

# Refresh the lock after changing pyproject's dependencies (or to take new releases): resolves
# the ranges for this interpreter (CPython 3.11 on Linux x86-64 for the committed lock) against
# the pinned torch, in a throwaway venv that holds the resolver alone.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q "$(PIP_PIN)" "$(PIP_TOOLS_PIN)"
	CUSTOM_COMPILE_COMMAND="make lock" .venv-lock/bin/pip-compile -q --upgrade --pip-args "$(TORCH_PIP)" \
	  --extra dev --extra ray --extra embed -c $(TORCH) \
	  --unsafe-package torch --strip-extras --no-emit-index-url --no-emit-find-links \
	  --annotation-style line -o $(LOCK) pyproject.toml
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(LATEST) .venv-lock build *.egg-info .benchmarks
