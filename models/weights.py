"""Loading local weights into one component: a Hugging Face folder or a .safetensors file.

Never from a hub. Keys are matched after stripping the prefixes Hugging Face checkpoints use
(e.g. `audio_spectrogram_transformer.` for AST classifiers); every shape must match.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from models.errors import InputError

_PREFIXES = ("audio_spectrogram_transformer.", "module.", "model.encoder.", "")
# What reading a truncated, corrupt or foreign file raises: safetensors' own error for the
# header and layout, OSError for the file itself.
UNREADABLE = (SafetensorError, OSError)


def unreadable(path: Path, err: Exception) -> InputError:
    """A safetensors file that cannot be read, as one line naming it."""
    return InputError(f"weights file {path} could not be read (truncated or not safetensors?): {err}")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise InputError(f"weights path {path} does not exist")
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise InputError(f"weights folder {path} has no *.safetensors file")
    elif path.suffix == ".safetensors":
        files = [path]
    else:
        raise InputError(f"weights file {path} is not a .safetensors file")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except UNREADABLE as err:
            raise unreadable(f, err) from None
    return state


def load_component(target: nn.Module, component: str, path: Path) -> None:
    """Copy matching tensors from `path` into `target`, the module whose names the checkpoint
    uses (`component` names it in errors); raise InputError on any mismatch."""
    own = target.state_dict()
    state = _read_state(path)
    best: dict[str, torch.Tensor] = {}
    for prefix in _PREFIXES:
        mapped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        matched = {k: v for k, v in mapped.items() if k in own}
        if len(matched) > len(best):
            best = matched
    if not best:
        raise InputError(f"weights {path} share no parameter names with the {component}")
    for key, tensor in best.items():
        if tensor.shape != own[key].shape:
            raise InputError(
                f"weights {path}: {key} has shape {tuple(tensor.shape)}, the {component} expects {tuple(own[key].shape)}"
            )
    missing = [k for k in own if k not in best and not k.endswith("rotary_emb.inv_freq")]
    if missing:
        raise InputError(f"weights {path} lack {len(missing)} {component} tensors, e.g. {missing[0]}")
    target.load_state_dict(best, strict=False)
