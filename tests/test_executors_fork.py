"""Workers are forked from a forkserver: nothing it preloads may initialise CUDA, or no forked
worker could use the GPU. Checked by spying on torch's CUDA entry points while importing what the
forkserver preloads, and by forking afterwards (meaningful with a CUDA build of torch)."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

from harness.executors.isolated import cuda_fork_problem
from harness.points import Point
from harness.suite import RunSettings
from harness.train_cost.max_batch import TRIAL_WORKLOAD

# What `preload` hands the forkserver for each workload the harness runs.
PRELOADED = sorted({"harness.executors.isolated", "harness.suite",
                    RunSettings().workload.partition(":")[0], TRIAL_WORKLOAD.partition(":")[0]})

_SPY = """
import importlib, json, os, sys
import torch

calls = []
def spy(owner, name):
    real = getattr(owner, name)
    def called(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)
    setattr(owner, name, called)

for name in ("is_available", "device_count", "init", "_lazy_init", "current_device", "get_device_properties",
             "get_device_capability", "get_device_name", "mem_get_info", "synchronize", "set_device"):
    spy(torch.cuda, name)
if hasattr(torch._C, "_cuda_getDeviceCount"):
    spy(torch._C, "_cuda_getDeviceCount")
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
pid = os.fork()
if pid == 0:
    os._exit(3 if torch.cuda._is_in_bad_fork() else 0)
_, status = os.waitpid(pid, 0)
print(json.dumps({"calls": calls, "initialized": torch.cuda.is_initialized(),
                  "child_in_bad_fork": os.waitstatus_to_exitcode(status) == 3}))
"""


def test_preloaded_modules_leave_cuda_alone():
    done = subprocess.run([sys.executable, "-c", _SPY, json.dumps(PRELOADED)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"calls": [], "initialized": False, "child_in_bad_fork": False}


def test_a_worker_forked_after_cuda_was_initialised_refuses_cuda_points_in_one_line(monkeypatch):
    point = Point("ast+llama", "tiny", "cuda", "float32", 1, 1.0, 4, 4)
    assert cuda_fork_problem(point) == ""
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    problem = cuda_fork_problem(point)
    assert "initialised in the forkserver" in problem and "\n" not in problem
    assert cuda_fork_problem(Point("ast+llama", "tiny", "cpu", "float32", 1, 1.0, 4, 4)) == ""
