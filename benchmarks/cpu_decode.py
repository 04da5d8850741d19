"""Where a CPU decode step's time goes at the paper's widths, and what brings it to the bandwidth floor.

A decode step reads every weight once, so its floor is weight bytes / memory bandwidth. This
builds Mamba-2.8B's shape cut to `--layers` layers (default 8: 0.9 GB in bfloat16, so it runs
beside other work), times one decode step in each dtype as the harness runs it (a batch-1
bfloat16 step with oneDNN off: `models.ops.cpu_gemv`) and with oneDNN forced on (torch's
default), and compares the weight bytes streamed per second with the machine's read bandwidth
(`harness.measure.ceilings`). `--profile` prints the operators that take the step's time.

    python benchmarks/cpu_decode.py --threads 1 --profile      # ~1 min, 2 GB of memory
"""
from __future__ import annotations

import argparse
import contextlib
import time
from unittest import mock

import torch

from harness.measure.ceilings import measure
from models.families.mamba import MAMBA_2_8B, Mamba
from models.init import cheap_init
from models.lms import CausalLM
from models.ops.cpu_gemv import gemv_kernels
from models.registry import _construct_on

REPEATS = 5
# The step's kernel choice as the harness makes it, and torch's default (oneDNN on, whatever the rows).
ARMS = {"as the harness": gemv_kernels, "oneDNN forced on": lambda *_: contextlib.nullcontext()}


def best_step_seconds(lm: CausalLM, cache: object) -> float:
    token = torch.tensor([1])
    lm.step(token, cache)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        lm.step(token, cache)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="top operators of one bfloat16 step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bandwidth = measure("cpu", args.threads).read_bytes_per_s
    print(f"read bandwidth, {args.threads} thread(s): {bandwidth / 1e9:.1f} GB/s")
    family = Mamba()
    shape = type(MAMBA_2_8B)(**{**MAMBA_2_8B.__dict__, "layers": args.layers})
    for dtype in (torch.bfloat16, torch.float32):
        torch.manual_seed(0)
        with _construct_on(torch.device("cpu"), dtype), cheap_init():
            model = family.build(shape)
        family.use_scan_backend(model, "auto", torch.device("cpu"))
        lm = CausalLM(family, model.eval())
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        with torch.inference_mode():
            _, cache = lm.prefill(lm.embed(torch.randint(0, 1000, (1, 48))))
            for arm, kernels in ARMS.items():
                with mock.patch("models.lms.gemv_kernels", kernels):
                    seconds = best_step_seconds(lm, cache)
                print(f"{str(dtype):15s} {arm:17s}: {seconds * 1e3:7.1f} ms per step, "
                      f"{weights / seconds / 1e9:5.1f} GB/s of weights = {weights / seconds / bandwidth:4.0%} "
                      f"of the floor")
            if args.profile and dtype == torch.bfloat16:
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    lm.step(torch.tensor([1]), cache)
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
        del model, lm, cache


if __name__ == "__main__":
    main()
