"""`lalm-bench generate VARIANT AUDIO.wav`: the smallest end-to-end proof.

Runs one variant on one file and prints the generated tokens and each phase's wall time
(one run, no warm-up: a demonstration, not a measurement — use `run` for numbers).
"""
from __future__ import annotations

import argparse
import time

import torch

from harness.errors import UserError
from models import SIZES, build
from models.audio import load_audio

NAME = "generate"
HELP = "run one variant on a WAV file and print the tokens and each phase's wall time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("variant", help="ast+llama (transformer), dass+mamba (ssm), dass+llama, ast+mamba")
    parser.add_argument("audio", help="a 16-bit PCM WAV file (any rate, mono or stereo)")
    parser.add_argument("--size", default="tiny", help=f"size preset: {', '.join(SIZES)} (default tiny)")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--prompt", default="What can be inferred from the audio?")
    parser.add_argument("--device", default="cpu")


def _timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, (time.perf_counter() - start) * 1e3


def run(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {args.device}: no CUDA device is available")
    wave = load_audio(args.audio)[None]
    model = build(args.variant, args.size, device=args.device)
    device = model.device
    # Without a trained tokenizer, the prompt is its UTF-8 bytes folded into the vocabulary.
    prompt = torch.tensor([[b % model.lm.vocab_size for b in args.prompt.encode()]], device=device)
    times: dict[str, float] = {}
    with torch.inference_mode():
        feats, times["fbank"] = _timed(lambda: model.features(wave.to(device)), device)
        enc, times["encoder"] = _timed(lambda: model.encode(feats), device)
        (logits, cache), times["prefill"] = _timed(lambda: model.prefill(enc, prompt), device)
        tokens = [logits.argmax(-1)]
        start = time.perf_counter()
        for _ in range(args.max_new_tokens - 1):
            logits, cache = model.decode_step(cache, tokens[-1])
            tokens.append(logits.argmax(-1))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times["decode"] = (time.perf_counter() - start) * 1e3
    ids = torch.stack(tokens, 1)[0].tolist()
    print(f"{model.spec.variant} ({args.size}) on {args.audio}: {wave.shape[-1] / 16000:.2f} s of audio, "
          f"{enc.num_tokens} audio tokens")
    print("tokens:", " ".join(map(str, ids)))
    for phase, ms in times.items():
        print(f"  {phase:<8} {ms:9.1f} ms")
    return 0
