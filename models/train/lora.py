"""LoRA adapters on the LM through `peft`, merged back before saving.

Merging keeps checkpoints in the plain LALM layout, so loading never needs peft.
"""
from __future__ import annotations

from models.errors import InputError
from models.lalm import LALM


def add_lora(lalm: LALM, rank: int, alpha: int) -> None:
    """Wrap the LM's Hugging Face model in LoRA adapters (frozen base, trainable adapters)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise InputError("LoRA training needs the `peft` package (pip install peft)") from err
    if has_lora(lalm):
        return
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(lalm.lm.family.lora_targets))
    lalm.lm.model = get_peft_model(lalm.lm.model, config)


def has_lora(lalm: LALM) -> bool:
    return hasattr(lalm.lm.model, "merge_and_unload")


def merge_lora(lalm: LALM) -> None:
    """Fold the adapters into the LM's weights and drop the peft wrapper."""
    if has_lora(lalm):
        lalm.lm.model = lalm.lm.model.merge_and_unload()
