"""Selective-scan speed on CPU: the compiled kernel against transformers' sequential scan, its
distance from the machine's limits, and the Mamba LM's forward pass before and after.

Prints three markdown tables (the "Selective scan" section of docs/PERF.md is made of them):
1. one scan at Mamba's shape (batch 1, d 512, n 16, length 4096, float32, with D, z, delta bias
   and softplus): the op's CPU kernel vs transformers' sequential path, median of --repeats;
2. the kernel against the machine: its FLOPs (`scan_flops`) and bytes over its time, next to a
   measured float32 matmul rate and memory-copy bandwidth;
3. the Mamba LM prefill (use_cache, last logits only) at the tiny and small presets' shapes over
   --lengths tokens: transformers' own mixer ('hf') vs the op ('cpu').
Run from the repository root on a quiet machine (it prints the load average before and after):
    python benchmarks/scan_speed.py [--threads 2] [--repeats 5] [--lengths 256 1024 4096 8192]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
from transformers import MambaForCausalLM
from transformers.models.mamba import modeling_mamba

from models.families.mamba import FAMILY as MAMBA, mamba_config
from models.ops.hf_mamba import use_scan_backend
from models.ops.selective_scan import scan_flops, selective_scan
from models.presets import SIZES

SCAN_SHAPE = dict(b=1, d=512, l=4096, n=16)


def scan_inputs(b: int, d: int, l: int, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Mamba-like float32 inputs: u, delta, z (b, d, l); A (d, n) = -(1..n) as Mamba initialises
    it; B, C (b, n, l); D, delta_bias (d,)."""
    g = torch.Generator().manual_seed(seed)
    return dict(
        u=torch.randn(b, d, l, generator=g),
        delta=torch.randn(b, d, l, generator=g) * 0.5 - 2.0,
        A=-torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),
        B=torch.randn(b, n, l, generator=g),
        C=torch.randn(b, n, l, generator=g),
        D=torch.ones(d),
        z=torch.randn(b, d, l, generator=g),
        delta_bias=torch.rand(d, generator=g) * 0.1,
    )


def op_scan(inputs: dict[str, torch.Tensor], backend: str = "cpu") -> Callable[[], torch.Tensor]:
    """The registered op, as the Mamba LM calls it (softplus on, last state returned)."""
    return lambda: selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend=backend)[0]


def hf_sequential_scan(inputs: dict[str, torch.Tensor]) -> Callable[[], torch.Tensor]:
    """transformers' own scan without mamba-ssm: (b, d, l, n) tensors and a loop over time."""
    return lambda: modeling_mamba.mamba_selective_scan(
        inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"], inputs["D"], inputs["z"],
        inputs["delta_bias"], delta_softplus=True, return_last_state=True,
    )[0]


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of `fn`, after one warm-up.

    On a busy machine the wall time includes waiting for a core; the CPU time does not, so the
    two together tell how much of a figure is the neighbours'.
    """
    with torch.inference_mode():
        fn()  # warm-up: compilation, caches, thread pools
        wall, cpu = [], []
        for _ in range(repeats):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds(lambda: a @ b, repeats)[0] / 1e9


def copy_gbytes(repeats: int, elements: int = 64 * 1024 * 1024) -> float:
    """Read + write bandwidth of a 256 MiB float32 copy (far beyond any cache)."""
    src, dst = torch.randn(elements), torch.empty(elements)
    return 2 * 4 * elements / median_seconds(lambda: dst.copy_(src), repeats)[0] / 1e9


def _times(wall_cpu: tuple[float, float]) -> str:
    return f"{wall_cpu[0] * 1e3:.1f} | {wall_cpu[1] * 1e3:.1f}"


def _speedup(before: tuple[float, float], after: tuple[float, float]) -> str:
    return f"{before[0] / after[0]:.1f}x | {before[1] / after[1]:.1f}x"


def scan_table(repeats: int) -> tuple[str, float]:
    inputs = scan_inputs(**SCAN_SHAPE)
    fast = median_seconds(op_scan(inputs), repeats)
    slow = median_seconds(hf_sequential_scan(inputs), max(1, repeats // 2))
    rows = [
        "| implementation | wall ms | CPU ms | speed-up (wall) | speed-up (CPU) |",
        "|---|---:|---:|---:|---:|",
        f"| transformers sequential (`mamba_selective_scan`, no mamba-ssm) | {_times(slow)} | 1.0x | 1.0x |",
        f"| `lalm::selective_scan`, backend cpu (numba kernel) | {_times(fast)} | {_speedup(slow, fast)} |",
    ]
    return "\n".join(rows), fast[0]


def limits_table(kernel_seconds: float, repeats: int) -> str:
    s = SCAN_SHAPE
    flops = scan_flops(s["b"], s["d"], s["l"], s["n"], True, True, has_delta_bias=True, delta_softplus=True)
    # Must-move bytes: u, delta, z read and y written (b, d, l) each; B, C (b, n, l); A (d, n); D, bias.
    nbytes = 4 * (4 * s["b"] * s["d"] * s["l"] + 2 * s["b"] * s["n"] * s["l"] + s["d"] * s["n"] + 2 * s["d"])
    peak_flops, peak_bytes = matmul_gflops(repeats), copy_gbytes(repeats)
    achieved_flops, achieved_bytes = flops / kernel_seconds / 1e9, nbytes / kernel_seconds / 1e9
    rows = [
        "| quantity | kernel | machine (measured) | fraction |",
        "|---|---:|---:|---:|",
        f"| GFLOP/s ({flops / 1e6:.0f} MFLOP per scan) | {achieved_flops:.1f} | {peak_flops:.1f} (float32 matmul) "
        f"| {achieved_flops / peak_flops:.0%} |",
        f"| GB/s ({nbytes / 1e6:.1f} MB must move) | {achieved_bytes:.1f} | {peak_bytes:.1f} (256 MiB copy) "
        f"| {achieved_bytes / peak_bytes:.0%} |",
    ]
    return "\n".join(rows)


def model_table(sizes: list[str], lengths: list[int], repeats: int) -> str:
    rows = [
        "| LM | tokens | transformers wall / CPU ms | op (cpu) wall / CPU ms | speed-up (wall) | speed-up (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        shape = MAMBA.shapes[size]
        torch.manual_seed(0)
        model = MambaForCausalLM(mamba_config(shape)).eval()
        for length in lengths:
            ids = torch.randint(0, shape.vocab, (1, length))
            prefill = lambda: model(ids, use_cache=True, logits_to_keep=1).logits  # noqa: E731
            use_scan_backend(model, "hf")
            before = median_seconds(prefill, max(1, repeats // 2))
            use_scan_backend(model, "cpu")
            after = median_seconds(prefill, repeats)
            rows.append(
                f"| {size} (hidden {shape.hidden}, {shape.layers} layers) | {length} "
                f"| {before[0] * 1e3:.0f} / {before[1] * 1e3:.0f} | {after[0] * 1e3:.0f} / {after[1] * 1e3:.0f} "
                f"| {_speedup(before, after)} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=sorted(SIZES))
    parser.add_argument("--skip-models", action="store_true", help="only the scan and the limits")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load average before {os.getloadavg()[0]:.1f}\n")
    table, kernel_seconds = scan_table(args.repeats)
    print(table, end="\n\n")
    print(limits_table(kernel_seconds, args.repeats), end="\n\n")
    if not args.skip_models:
        print(model_table(args.sizes, args.lengths, args.repeats), end="\n\n")
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
