"""Checkpoints: `model.safetensors` (the whole LALM's weights) + `config.json` (how to rebuild it).

Loading builds the model from its variant and size with `models.build` and reads the tensors
with safetensors: weights only, never pickle.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from models.errors import InputError
from models.lalm import LALM
from models.registry import build
from models.tokenizer import ByteTokenizer, tokenizer_from_config
from models.weights import UNREADABLE, unreadable

FORMAT = "lalm-bench-checkpoint/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
REQUIRED_KEYS = ("format", "variant", "size", "tokenizer", "prompt_template")


@dataclass
class Checkpoint:
    lalm: LALM
    tokenizer: ByteTokenizer
    config: dict  # everything in config.json: variant, size, tokenizer, prompt, training record

    @property
    def prompt_template(self) -> str:
        return self.config["prompt_template"]


def save_checkpoint(out: Path, lalm: LALM, tokenizer: ByteTokenizer, prompt_template: str, extra: dict) -> Path:
    """Write weights and config to the folder `out` (created); returns `out`.

    extra: JSON-able training record (dataset, recipe, time, losses...), stored under "training".
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # save_model (not save_file) de-duplicates tied tensors, e.g. Mamba's shared embedding/head.
    save_model(lalm, str(out / WEIGHTS_FILE))
    config = {
        "format": FORMAT,
        "variant": lalm.spec.variant,
        "size": lalm.spec.size,
        "tokenizer": tokenizer.config(),
        "prompt_template": prompt_template,
        "training": extra,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return out


def read_config(path: Path) -> dict:
    """The checkpoint's config.json, checked for the keys loading needs."""
    config_path = Path(path) / CONFIG_FILE
    if not Path(path).is_dir():
        raise InputError(f"{path}: checkpoint folder not found")
    if not config_path.is_file():
        raise InputError(f"{config_path}: checkpoint config not found")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{config_path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise InputError(f"{config_path}: missing key(s) {', '.join(missing)}")
    if config["format"] != FORMAT:
        raise InputError(f"{config_path}: format {config['format']!r} is not {FORMAT!r}")
    return config


def load_checkpoint(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                    scan_backend: str = "auto") -> Checkpoint:
    """Rebuild the trained LALM from a checkpoint folder (eval mode)."""
    config = read_config(path)
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{weights}: checkpoint weights not found")
    lalm = build(config["variant"], config["size"], device=device, dtype=dtype, scan_backend=scan_backend)
    try:
        load_model(lalm, str(weights), strict=True, device=str(device))
    except UNREADABLE as err:
        raise unreadable(weights, err) from None
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{weights}: does not match a {config['variant']} {config['size']} model ({first_line})") from None
    return Checkpoint(lalm.eval(), tokenizer_from_config(config["tokenizer"]), config)
