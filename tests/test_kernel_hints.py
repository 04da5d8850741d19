"""transformers' "falling back to its reference PyTorch implementation" hint is silenced on the CPU."""
from __future__ import annotations

import logging

import pytest
import torch

from harness.devices import select_device_quieting_cpu_hints
from harness.kernel_hints import HINT, HINT_LOGGER
from models import build

pytestmark = pytest.mark.usefixtures("one_thread")


class Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _hints_of_a_run_through_transformers_mamba() -> list[str]:
    """The kernel hints a tiny SSM LALM on transformers' own Mamba path logs on the CPU."""
    logging.Logger.warning_once.cache_clear()  # each hint is logged once per process: make it due again
    seen = Seen()
    logger = logging.getLogger(HINT_LOGGER)
    logger.addHandler(seen)
    try:
        lalm = build("dass+mamba", "tiny", scan_backend="hf")
        with torch.no_grad():
            lalm.generate(torch.rand(1, 16000), torch.tensor([[1, 2]]), 2)
    finally:
        logger.removeHandler(seen)
    return [m for m in seen.messages if HINT in m]


def test_the_cpu_kernel_hint_is_silenced_once_a_cpu_device_is_selected(monkeypatch):
    monkeypatch.setattr(logging.getLogger(HINT_LOGGER), "filters", [])
    assert any("causal_conv1d" in m for m in _hints_of_a_run_through_transformers_mamba())  # what it silences
    select_device_quieting_cpu_hints("cpu")
    assert _hints_of_a_run_through_transformers_mamba() == []
