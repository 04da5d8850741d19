"""What `lalm-bench env` and run.json say about the optional CUDA kernels: whether each imports
(not merely whether it is installed) and what the 'auto' scan setting runs on CUDA."""
from __future__ import annotations

import subprocess
import sys

import pytest

from harness import env


@pytest.fixture
def fresh_probe():
    env.kernels.cache_clear()
    yield
    env.kernels.cache_clear()


def test_without_kernels_nothing_is_probed(fresh_probe, monkeypatch):
    monkeypatch.setattr(env.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(env, "_probe_kernels", lambda wanted: pytest.fail("probed with nothing installed"))
    found = env.capture()["kernels"]
    assert found == {**dict.fromkeys(env.KERNEL_IMPORTS, "not installed"), "auto_scan_backend_cuda": "torch"}


def test_a_broken_extension_is_reported_with_its_import_error(fresh_probe, monkeypatch, tmp_path):
    """An extension built against another torch: installed, but its import fails."""
    (tmp_path / "selective_scan_cuda.py").write_text("raise OSError('undefined symbol: _ZN3c104cuda')\n")
    (tmp_path / "triton.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    found = env.kernels()
    assert found["selective_scan_cuda"] == "OSError: undefined symbol: _ZN3c104cuda"
    assert found["triton"] == "ok"
    assert found["causal_conv1d"] == "not installed"
    assert found["auto_scan_backend_cuda"] == "torch"  # the op does not use a kernel that fails to import


def test_capturing_the_environment_imports_no_torch():
    code = "import sys, harness.env as e; e.capture(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
