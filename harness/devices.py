"""The one `--device` option of every command that runs a model on one device.

The name is checked before anything is loaded or written, so `--device banana` is one line
naming it (exit 2), not a traceback after minutes of work.
"""
from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.kernel_hints import silence_cpu_kernel_hints

if TYPE_CHECKING:
    import torch

DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?")
DEVICE_HELP = "cpu, cuda or cuda:N"


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help=f"{DEVICE_HELP} (default cpu)")


def select_device_quieting_cpu_hints(name: str) -> torch.device:
    """`--device NAME` as a torch device that exists here, or a UserError naming it. On the CPU,
    transformers' hints to install CUDA kernels are silenced (`harness.kernel_hints`)."""
    if not DEVICE_NAME.fullmatch(name):
        raise UserError(f"--device {name!r}: not a device; use {DEVICE_HELP}")
    import torch

    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    else:
        silence_cpu_kernel_hints()
    return device
