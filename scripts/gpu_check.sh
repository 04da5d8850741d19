#!/usr/bin/env bash
# The one check a CUDA machine runs, in one command of under 8 minutes (DEADLINE_S, 480 by
# default), most valuable first, so a run cut short still answers the main questions:
#   probe     ~20 s: torch/CUDA/driver, nvidia-smi -L, which optional kernels import and what
#             'auto' scans with, NVML's energy counter and whether NVML sees our pid -> env.txt.
#             Without CUDA it stops here, non-zero, with one line.
#   setup     .venv like `make setup` (reuses the interpreter's CUDA torch), then checks that
#             the venv's torch sees the GPU.
#   tests-*   the GPU tests, by value: scan / state update / parity -> CUDA graphs ->
#             memory, NVML, energy -> profiler -> training and the largest-batch search.
#   sweep     5 points (ast+llama, dass+mamba and dass+mamba2 eager fp32, dass+mamba fp16 and
#             as a CUDA graph; energy on all) and its report.
#   gate      a CUDA kernel-timing record, if time is left.
#
#   OUT=/tmp/gpu-check bash scripts/gpu_check.sh        # OUT defaults to results/gpu-check
#
# $OUT gets at most 6 files, no folders: env.txt, summary.txt (printed at the end), gpu_check.log
# (every step's full output: pytest -v -rA, so a killed step still shows its last test),
# tests.xml (JUnit, every test step), sweep.tar.gz (the run folder and its report),
# kernels-cuda.json (a gate record: commit it as results/baselines/kernels-cuda.json).
#
# pytest runs with its configured addopts replaced (they name an optional plugin) and a per-test
# time limit from scripts/pytest_per_test_timeout.py (standard library only). Each step has its
# own limit, cut to what is left before the deadline; a step with no time left says so. Offline
# machines: wheels of missing dependencies can be put in .whl/ beside the checkout
# (`pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl NAME`).
# Exit code: the number of steps that were not ok (3 with no CUDA).
set -uo pipefail
cd "$(dirname "$0")/.."

START=$(date +%s)
DEADLINE_S=${DEADLINE_S:-480}
OUT=${OUT:-results/gpu-check}
PYTHON=${PYTHON:-python3}
VENV=.venv
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/junit"
STEPS="$WORK/steps.tsv"
: >"$LOG"
: >"$STEPS"
rm -f "$OUT/summary.txt" "$OUT/tests.xml" "$OUT/sweep.tar.gz" "$OUT/kernels-cuda.json"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD:$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"

left() { echo $((DEADLINE_S - ($(date +%s) - START))); }

# step NAME LIMIT COMMAND...: run with min(LIMIT, time left - 5) seconds, output to the log,
# record exit code and seconds. A step with under 10 s left is recorded as skipped.
step() {
  local name=$1 limit=$2 started code budget
  shift 2
  budget=$(($(left) - 5))
  [ "$budget" -lt "$limit" ] && limit=$budget
  if [ "$limit" -lt 10 ]; then
    printf '%s\tskipped\t0\tno time left before the %ss deadline\n' "$name" "$DEADLINE_S" >>"$STEPS"
    echo "=== $name: skipped, no time left" >>"$LOG"
    return 1
  fi
  started=$(date +%s)
  echo "=== $name (limit ${limit}s, $(left)s left): $*" >>"$LOG"
  timeout --kill-after=5 "$limit" "$@" >>"$LOG" 2>&1
  code=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$(($(date +%s) - started))" \
    "$([ "$code" -eq 124 ] || [ "$code" -eq 137 ] && echo "killed at its ${limit}s limit")" >>"$STEPS"
  echo "=== $name: exit $code after $(($(date +%s) - started))s" >>"$LOG"
  return "$code"
}

# tests NAME LIMIT PER_TEST_S PYTEST_ARGS...: a pytest step, verbose, JUnit to $WORK/junit/NAME.xml.
tests() {
  local name=$1 limit=$2 per_test=$3
  shift 3
  step "$name" "$limit" "$PY" -m pytest -o addopts= -p no:cacheprovider -p pytest_per_test_timeout \
    --per-test-timeout "$per_test" --strict-markers -v -rA --junitxml="$WORK/junit/$name.xml" "$@"
}

# The summary's exit code is the number of steps not ok; without Python's summary, the raw steps.
summary() {
  "$PY" scripts/gpu_check_summary.py "$STEPS" "$WORK/junit" "$OUT" "$@" 2>>"$LOG"
  local code=$?
  [ -s "$OUT/summary.txt" ] || { cat "$STEPS"; code=1; }
  return "$code"
}

setup_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import harness.cli, models, pytest, numba, transformers" 2>/dev/null
  then
    echo ".venv already runs the project: left as it is"
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    # The probe passed on this interpreter, so it has a CUDA torch: keep it (and any mamba-ssm
    # built against it), as `make setup` does.
    "$PYTHON" -m venv --system-site-packages "$VENV" || return 1
    # When that interpreter is itself a virtual environment's, --system-site-packages reaches
    # the base interpreter and not that environment (where torch is): link its packages too.
    local site
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$PYTHON" -c 'import site, sys; sys.prefix != sys.base_prefix and print("\n".join(site.getsitepackages()))' \
      >"$site/parent_environment.pth"
  fi
  local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  if compgen -G ".whl/*.whl" >/dev/null; then
    "${pip[@]}" --no-index --no-deps .whl/*.whl || return 1
  fi
  # Offline first (every dependency already there; the dev extra's plugins are optional here),
  # then with an index. Either way the steps run from the checkout (PYTHONPATH); what decides is
  # whether the requirements and pytest are there, and the missing ones are named.
  "${pip[@]}" --no-index --no-build-isolation -e ".[dev]" \
    || "${pip[@]}" --no-index --no-build-isolation -e . \
    || "${pip[@]}" --timeout 10 --retries 1 -e ".[dev]"
  "$VENV/bin/python" - <<'PY'
import importlib.metadata, re, sys, tomllib

wanted = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"] + ["pytest"]
canonical = lambda name: name.lower().replace("_", "-")
installed = {canonical(d.metadata["Name"] or "") for d in importlib.metadata.distributions()}
names = [re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in wanted]
missing = [name for name in names if canonical(name) not in installed]
print("missing requirements:", ", ".join(missing) or "none")
sys.exit(1 if missing else 0)
PY
}

# --- probe: everything else needs CUDA --------------------------------------------------------
PY="$PYTHON"
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
step probe 40 bash -o pipefail -c '"$0" scripts/gpu_probe.py | tee "$1"' "$PY" "$OUT/env.txt"
probe_code=$(tail -n 1 "$STEPS" | cut -f2)
if [ "$probe_code" != "0" ]; then
  verdict=$(grep '^verdict' "$OUT/env.txt" 2>/dev/null | sed 's/^verdict *//')
  echo "gpu_check: ${verdict:-probe failed (exit $probe_code)} ($(($(date +%s) - START)) s; details in $OUT/env.txt)"
  exit 3
fi

# --- setup --------------------------------------------------------------------------------------
export -f setup_venv
export PYTHON VENV
step setup 90 bash -c setup_venv
PY="$VENV/bin/python"
if ! step venv-cuda 30 "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA in .venv")'; then
  echo "gpu_check: .venv's torch does not see the GPU (every gpu test would skip); see $LOG" | tee -a "$LOG"
  summary >/dev/null
  exit 3
fi

# The GPU machine installs offline from what it has, not from the lock: say how far that is from it.
{ echo; echo "differences from requirements/lock.txt:"; "$PY" -m harness env --check; } >>"$OUT/env.txt" 2>&1

# --- tests, most valuable first -----------------------------------------------------------------
# The scan: mamba-ssm kernels vs the reference (fp32/fp16, backward, opcheck), the Triton decode
# step, the Mamba LM vs transformers' on CUDA; the CUDA path's plumbing; the forkserver check.
tests tests-scan 100 60 tests/test_selective_scan.py tests/test_scan_cuda.py tests/test_executors_fork.py \
  -k "cuda or fork"
tests tests-graphs 60 45 tests/test_measure_models.py -m gpu
tests tests-memory 75 45 tests/test_measure_memory.py tests/test_measure_energy.py tests/test_runner.py \
  tests/test_audio.py -m gpu
tests tests-profile 60 45 tests/test_profile_gpu.py -m gpu
tests tests-train 100 90 tests/test_train_cost_search.py -m gpu  # the largest-batch search: its own small limit

# --- a 5-point sweep and its report -------------------------------------------------------------
cat >"$WORK/gpu-check.toml" <<'TOML'
name = "gpu-check"
description = "GPU check: the three LM families eager in fp32, the SSM LALM in fp16 and as a CUDA graph; energy"

[grid]
variant = ["ast+llama", "dass+mamba", "dass+mamba2", "dass+mamba", "dass+mamba"]
dtype = ["float32", "float32", "float32", "float16", "float32"]
mode = ["eager", "eager", "eager", "eager", "cuda_graph"]
zip = [["variant", "dtype", "mode"]]
size = "small"
audio_seconds = 10
batch_size = 2

[measure]
phases = ["fbank", "encoder", "prefill", "decode", "e2e"]
meters = ["latency", "memory", "state", "flops", "energy", "roofline"]  # roofline: the CUDA ceilings too
warmup = 2
repeats = 5
max_repeats = 20
max_phase_seconds = 2.0
prompt_tokens = 16
new_tokens = 8

[run]
device = "cuda"
timeout_s = 100
TOML
step sweep 150 "$PY" -m harness run "$WORK/gpu-check.toml" --out "$WORK/sweep" --quiet
[ -d "$WORK/sweep" ] && step report 40 "$PY" -m harness report "$WORK/sweep" -o "$WORK/sweep/report"
[ -d "$WORK/sweep" ] && tar -czf "$OUT/sweep.tar.gz" -C "$WORK" sweep

# --- a CUDA kernel-timing record, with what time is left ----------------------------------------
step gate 45 "$PY" -m harness gate --device cuda --update-baseline --baseline "$OUT/kernels-cuda.json" \
  --rounds 10 --samples 10 --budget-s 10

echo "=== done after $(($(date +%s) - START))s" >>"$LOG"
summary "$WORK/sweep"
