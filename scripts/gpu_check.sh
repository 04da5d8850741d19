#!/usr/bin/env bash
# The one check a CUDA machine runs, from a bare machine to a folder of results, in under
# 10 minutes: set up .venv like `make setup`, run the GPU tests, time the gate's kernels on
# CUDA (pytest-benchmark and a gate record), run a small GPU sweep and report it.
#
#   OUT=/tmp/gpu-check scripts/gpu_check.sh        # OUT defaults to ./gpu-check
#
# Everything lands in $OUT as at most 8 files, no folders (the sweep and the report are
# tarred): gpu_check.log (all output), summary.txt (each step's exit code and seconds),
# gpu_tests.xml (JUnit), bench_cuda.json (pytest-benchmark), kernels-cuda.json (a gate
# record: commit it as results/baselines/kernels-cuda.json), sweep.tar.gz (the run folder:
# results.parquet, samples, run.json), report.tar.gz.
#
# Offline machines: wheels of any missing dependency can be put in .whl/ beside the checkout
# (`pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl NAME`);
# they are installed first. Each step has its own time limit and a failing step does not
# stop the others; the exit code is the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-gpu-check}
PYTHON=${PYTHON:-python3}
VENV=.venv
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/summary.txt"
: >"$LOG"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1
FAILED=0

# step NAME SECONDS COMMAND...: run with a time limit, log its output, record code and time.
step() {
  local name=$1 limit=$2 start code
  shift 2
  start=$(date +%s)
  echo "=== $name (limit ${limit}s): $*" | tee -a "$LOG"
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  code=$?
  printf '%-12s exit %3d  %4d s\n' "$name" "$code" "$(($(date +%s) - start))" | tee -a "$SUMMARY" "$LOG"
  [ "$code" -eq 0 ] || FAILED=$((FAILED + 1))
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    if "$PYTHON" -c "import torch" 2>/dev/null; then
      # Keep the interpreter's CUDA torch, as `make setup` does.
      "$PYTHON" -m venv --system-site-packages "$VENV" || return 1
      # When that interpreter is itself a virtual environment's, --system-site-packages reaches
      # the base interpreter and not that environment (where torch is): link its packages too.
      local site
      site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
      "$PYTHON" -c 'import site, sys; sys.prefix != sys.base_prefix and print("\n".join(site.getsitepackages()))' \
        >"$site/parent_environment.pth"
    else
      "$PYTHON" -m venv "$VENV" && "$VENV/bin/pip" install -q "torch==2.13.0" || return 1
    fi
  fi
  local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  if compgen -G ".whl/*.whl" >/dev/null; then
    "${pip[@]}" --no-index --no-deps .whl/*.whl || return 1
  fi
  # Offline first (every dependency already there), then with an index. Without either the
  # steps still run from the checkout (PYTHONPATH below), and the missing requirements are named.
  "${pip[@]}" --no-index --no-build-isolation -e ".[dev]" \
    || "${pip[@]}" --timeout 10 --retries 1 -e ".[dev]" \
    || "$VENV/bin/python" - <<'PY'
import importlib.metadata, re, sys, tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
canonical = lambda name: name.lower().replace("_", "-")
installed = {canonical(d.metadata["Name"] or "") for d in importlib.metadata.distributions()}
names = [re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in wanted]
missing = [name for name in names if canonical(name) not in installed]
print("project not installed; missing requirements:", ", ".join(missing) or "none")
sys.exit(1 if missing else 0)
PY
}

# The limits add up to under 9 minutes; a usual run takes a few.
export -f setup_venv
export PYTHON VENV
step setup 90 bash -c setup_venv
PY="$VENV/bin/python"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step env 20 "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())'
step gpu-tests 130 "$PY" -m pytest -m gpu -q --junitxml="$OUT/gpu_tests.xml"
step bench-cuda 80 "$PY" -m pytest tests/benchmarks/test_kernels.py -m gpu -q --benchmark-enable \
  --benchmark-json="$OUT/bench_cuda.json" --benchmark-columns=median,iqr,rounds
step gate-cuda 50 "$PY" -m harness gate --device cuda --update-baseline --baseline "$OUT/kernels-cuda.json" \
  --rounds 20 --samples 20 --budget-s 15
step sweep 110 "$PY" -m harness run quick --device cuda --out "$OUT/sweep" --quiet
step report 40 "$PY" -m harness report "$OUT/sweep" -o "$OUT/report"
for folder in sweep report; do
  [ -d "$OUT/$folder" ] && tar -czf "$OUT/$folder.tar.gz" -C "$OUT" "$folder" && rm -rf "${OUT:?}/$folder"
done

echo "failed steps: $FAILED" | tee -a "$SUMMARY"
exit "$FAILED"
