"""The process that runs under callgrind in count mode: `python -m harness.gate.count_worker`.

Started by `harness.gate.counting` with instrumentation off. It imports torch and the models
once, then for each kernel: builds it, warms it up uninstrumented (lazy initialisation, numba
loading, oneDNN primitive creation), switches instrumentation on, makes one more call (so the
simulated caches hold what the kernel left there, as they would in a loop), zeroes the counts,
makes `--calls` calls and dumps their counts to a file named after the kernel. Python's garbage
collector is off while counting, so a collection never lands in one kernel's window by chance.
Writes `meta.json` (what code paths ran, library versions) into `--out`.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
from pathlib import Path

WARM_CALLS = 2  # uninstrumented calls before counting: the first call of a kernel initialises lazily


def code_paths() -> dict[str, str]:
    """Which instruction-set paths ran: torch's dispatch level, the math libraries' caps, numba's
    target, and the CPU that LLVM detects (under valgrind, valgrind's virtual CPU)."""
    import llvmlite.binding as llvm
    import numba
    import torch

    return {
        "torch": torch.backends.cpu.get_cpu_capability(),
        "mkl": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "auto"),
        "onednn": os.environ.get("ONEDNN_MAX_CPU_ISA", "auto"),
        "numba": str(numba.config.CPU_NAME or "host"),
        "cpu": llvm.get_host_cpu_name(),
    }


def versions() -> dict[str, str]:
    import numba
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "numba": numba.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", type=Path, required=True, help="the built client-request library")
    parser.add_argument("--out", type=Path, required=True, help="folder for meta.json")
    parser.add_argument("--kernels", required=True, help="comma-separated kernel names")
    parser.add_argument("--calls", type=int, required=True, help="counted calls per kernel")
    args = parser.parse_args(argv)

    import torch

    from harness.gate.callgrind import Callgrind
    from harness.gate.kernels import build

    callgrind = Callgrind(args.client)
    if not callgrind.running_on_valgrind:
        print("count_worker: not running under valgrind; start it through `lalm-bench gate`", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # valgrind runs one thread at a time anyway; more only add pool overhead
    cpu = torch.device("cpu")
    for name in args.kernels.split(","):
        fn = build(name, cpu)
        for _ in range(WARM_CALLS):
            fn()
        gc.collect()
        gc.disable()
        callgrind.start()
        fn()
        callgrind.zero()
        for _ in range(args.calls):
            fn()
        callgrind.dump(name)
        callgrind.stop()
        gc.enable()
        del fn
    (args.out / "meta.json").write_text(json.dumps({"code_paths": code_paths(), "versions": versions()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
