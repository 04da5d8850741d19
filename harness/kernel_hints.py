"""Quiets transformers' hint to install CUDA kernels, where they could not run anyway.

transformers wraps its Mamba helpers (`causal_conv1d_fn`, `selective_scan_fn`, ...) so that each
says once, on first use without the kernel, that it "is falling back to its reference PyTorch
implementation because `causal_conv1d` is either not installed or doesn't support the device of
the inputs". On a CPU that is the only path there is (causal-conv1d and mamba-ssm are CUDA
kernels), so every SSM command on a CPU would print it; on CUDA it is worth reading and stays.
"""
from __future__ import annotations

import logging

HINT_LOGGER = "transformers.integrations.hub_kernels"
HINT = "is falling back to its reference PyTorch implementation because"


class _KernelHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return HINT not in record.getMessage()


def silence_cpu_kernel_hints() -> None:
    """Drop that one message in this process (idempotent); call it for work on the CPU only."""
    logger = logging.getLogger(HINT_LOGGER)
    if not any(isinstance(f, _KernelHint) for f in logger.filters):
        logger.addFilter(_KernelHint())
