"""Why `--threads` defaults to 1: one thread against torch's default on this machine, as it is now.

Times the phases `lalm-bench profile` and `generate` run (fbank, encoder, prefill, one decode
step) of a `tiny` model on `--audio-seconds` of audio, alternating between one torch thread and
torch's default (one per core) so that changing load hits both alike, and prints each phase's
median and p90 per setting, their ratio and the load average. On a shared machine (load at or
above the core count) the default is many times slower and far more variable; on a quiet one
it can be a little faster. docs/PERF.md records a run.

    python benchmarks/threads_default.py [--variant dass+mamba] [--audio-seconds 3] [--rounds 30]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch

from models import build

PHASES = ("fbank", "encoder", "prefill", "decode")


def _phase_calls(variant: str, audio_seconds: float) -> dict[str, tuple[Callable, Callable]]:
    """Per phase: (untimed setup -> argument, timed call of that argument)."""
    lalm = build(variant, "tiny")
    generator = torch.Generator().manual_seed(0)
    wave = torch.rand(1, round(audio_seconds * 16000), generator=generator) * 2 - 1
    prompt = torch.randint(0, lalm.lm.vocab_size, (1, 8), generator=generator)
    feats = lalm.features(wave)
    enc = lalm.encode(feats)
    logits, cache = lalm.prefill(enc, prompt)
    token = logits.argmax(-1)
    return {
        "fbank": (lambda: wave, lalm.features),
        "encoder": (lambda: feats, lalm.encode),
        "prefill": (lambda: enc, lambda e: lalm.prefill(e, prompt)),
        # A fresh copy of the prefill's cache each time: a decode step extends the one it is given.
        "decode": (lambda: copy.deepcopy(cache), lambda c: lalm.decode_step(c, token)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="dass+mamba")
    parser.add_argument("--audio-seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per phase and setting")
    args = parser.parse_args()

    default = torch.get_num_threads()  # torch's own choice, before anything changes it
    settings = {"1 thread": 1, f"default ({default})": default}
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    load_before = os.getloadavg()[0]
    with torch.inference_mode():
        calls = _phase_calls(args.variant, args.audio_seconds)
        for _ in range(args.rounds):
            for label, threads in settings.items():
                torch.set_num_threads(threads)
                for phase in PHASES:
                    setup, call = calls[phase]
                    argument = setup()
                    start = time.perf_counter()
                    call(argument)
                    times[label, phase].append((time.perf_counter() - start) * 1e3)
    load_after = os.getloadavg()[0]
    print(f"{args.variant} tiny, {args.audio_seconds:g} s audio, {args.rounds} calls per phase; "
          f"{os.cpu_count()} logical cores, load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{'phase':<9}" + "".join(f"{label + ' median / p90 ms':>32}" for label in settings) + f"{'ratio':>8}")
    for phase in PHASES:
        cells, medians = [], []
        for label in settings:
            samples = sorted(times[label, phase])
            median, p90 = statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]
            medians.append(median)
            cells.append(f"{median:>20.3f} / {p90:>9.3f}")
        print(f"{phase:<9}" + "".join(cells) + f"{medians[1] / medians[0]:>8.1f}")


if __name__ == "__main__":
    main()
