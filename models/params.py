"""Parameter accounting: total and LoRA-trainable counts per component.

LoRA as in LTU and ssLAM: rank 8 on the Linears each LM family names (`lora_targets`: LLaMA's
q_proj and v_proj, Mamba's in_proj). A LoRA adapter on a Linear(in, out) adds r * (in + out)
trainable parameters.
"""
from __future__ import annotations

from torch import nn

from models.families.base import LORA_RANK
from models.lms import CausalLM


def count(module: nn.Module) -> int:
    """Parameters of `module`, each shared (tied) tensor once. Works on the meta device."""
    return sum(p.numel() for p in module.parameters())


def lora_trainable(lm: CausalLM, rank: int = LORA_RANK) -> int:
    """Trainable parameters that LoRA adapters on the LM family's target modules would add."""
    targets = lm.family.lora_targets
    return sum(
        rank * (m.in_features + m.out_features)
        for name, m in lm.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    )


def breakdown(lalm: nn.Module) -> dict[str, dict[str, int]]:
    """{component: {"total": n, "lora_trainable": n}} for frontend, encoder, projector and lm."""
    parts = {name: {"total": count(getattr(lalm, name))} for name in ("frontend", "encoder", "projector", "lm")}
    parts["lm"]["lora_trainable"] = lora_trainable(lalm.lm)
    return parts
