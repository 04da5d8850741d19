"""`lalm-bench generate VARIANT AUDIO.wav`: the smallest end-to-end proof.

Runs one variant on one file and prints the generated tokens and each phase's wall time
(one run, no warm-up: a demonstration, not a measurement — use `run` for numbers).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from harness.audio_input import add_max_audio_seconds_argument, conversion_note, read_clip
from harness.devices import add_device_argument, select_device_quieting_cpu_hints
from harness.errors import UserError
from harness.threads import add_threads_argument, apply_threads
from models.names import variants_with_aliases

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

NAME = "generate"
HELP = "run one variant on a WAV file and print the tokens and each phase's wall time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models import SIZES

    parser.add_argument("variant", help=variants_with_aliases())
    parser.add_argument("audio", help="a WAV file: integer PCM (8/16/24/32-bit) or float (32/64-bit), "
                                      "any rate and channel count")
    parser.add_argument("--size", default="tiny", help=f"size preset: {', '.join(SIZES)} (default tiny)")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--prompt", default="What can be inferred from the audio?")
    add_device_argument(parser)
    add_threads_argument(parser)
    add_max_audio_seconds_argument(parser)


def _timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    import torch

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
    selected = select_device_quieting_cpu_hints(args.device)
    threads = apply_threads(args.threads)
    import torch

    from harness.forecast import progress_for
    from models import build

    wave, info = read_clip(args.audio, args.max_audio_seconds)
    wave = wave[None]
    note = conversion_note(info)
    if note:
        print(note, file=sys.stderr)
    model = build(args.variant, args.size, device=selected)
    device = model.device
    # Without a trained tokenizer, the prompt is its UTF-8 bytes folded into the vocabulary.
    prompt = torch.tensor([[b % model.lm.vocab_size for b in args.prompt.encode()]], device=device)
    times: dict[str, float] = {}
    progress = progress_for(model, wave, prompt, args.max_new_tokens, args.audio)
    with torch.inference_mode(), progress:
        feats, times["fbank"] = _timed(lambda: model.features(wave.to(device)), device)
        progress.done("fbank")
        enc, times["encoder"] = _timed(lambda: model.encode(feats), device)
        progress.done("encoder")
        (logits, cache), times["prefill"] = _timed(lambda: model.prefill(enc, prompt), device)
        progress.done("prefill")
        tokens = [logits.argmax(-1)]
        start = time.perf_counter()
        for _ in range(args.max_new_tokens - 1):
            logits, cache = model.decode_step(cache, tokens[-1])
            tokens.append(logits.argmax(-1))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times["decode"] = (time.perf_counter() - start) * 1e3
        progress.done("decode")
    ids = torch.stack(tokens, 1)[0].tolist()
    print(f"{model.spec.variant} ({args.size}) on {args.audio}: {wave.shape[-1] / 16000:.2f} s of audio, "
          f"{enc.num_tokens} audio tokens, {threads} CPU thread(s)")
    print("weights: random (generate builds the model untrained), so the tokens mean nothing; "
          "`lalm-bench eval CKPT` runs a trained checkpoint")
    print("tokens:", " ".join(map(str, ids)))
    for phase, ms in times.items():
        print(f"  {phase:<8} {ms:9.1f} ms")
    return 0
