"""The `[measure.train]` section of a suite: how `train_step` points are trained and searched.

    [measure.train]
    stage = "lora"                  # projector | lora | full (models.finetune_stages.STAGES)
    precision = "off"               # off | bf16 (autocast; weights and AdamW state keep run.dtype)
    activation_checkpointing = false
    max_batch = true                # search the largest batch that fits, at each batch-1 point
    max_batch_limit = 1024          # the search stops here (the answer is then "at least")
    memory_limit_mb = 0             # memory each search try may use; 0 = the device's own
    trial_timeout_s = 600           # per try (model build included)
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.finetune_stages import PRECISIONS, STAGES

StageName = Literal[tuple(STAGES)]
Precision = Literal[PRECISIONS]


class TrainSettings(BaseModel):
    """How a training step is set up, and whether and how its largest batch is searched.

    memory_limit_mb: on the CPU, the address space a try may add to its process (RLIMIT_AS),
    weights included; on CUDA, the allocator's cap (a fraction of the device's memory).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    stage: StageName = "lora"
    precision: Precision = "off"
    activation_checkpointing: bool = False
    max_batch: bool = False
    max_batch_limit: int = Field(default=1024, ge=1, le=1 << 16)
    memory_limit_mb: int = Field(default=0, ge=0)
    trial_timeout_s: float = Field(default=600.0, gt=0)

    def columns(self) -> dict[str, str]:
        """Context columns that record the setting in every train_step row."""
        return {"train_stage": self.stage, "precision": self.precision,
                "activation_checkpointing": "on" if self.activation_checkpointing else "off"}
