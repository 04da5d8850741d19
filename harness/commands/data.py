"""`lalm-bench data kws --out DIR`: synthesise the offline keyword-spotting set.

Writes a Speech Commands v2 folder (1 s, 16 kHz, 16-bit mono clips of the ten command words and
of `_unknown_` words, `_background_noise_/`, `validation_list.txt`, `testing_list.txt`) from
espeak-ng speech. Deterministic for a given set of options; rerunning with the same options on
the same folder does nothing.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

NAME = "data"
HELP = "Generate the synthetic keyword-spotting dataset (Speech Commands v2 layout)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.tasks.synth_kws import SynthConfig

    defaults = SynthConfig()
    parser.add_argument("dataset", choices=["kws"], help="which dataset to synthesise")
    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument("--timbres", type=int, default=defaults.timbres,
                        help=f"espeak timbre variants to use, each a group of voices (default all {defaults.timbres})")
    parser.add_argument("--voices-per-timbre", type=int, default=defaults.voices_per_timbre,
                        help=f"accents per timbre variant, each a voice (default {defaults.voices_per_timbre})")
    parser.add_argument("--takes", type=int, default=defaults.takes,
                        help=f"clips per voice and command word (default {defaults.takes})")
    parser.add_argument("--words", default=",".join(defaults.words),
                        help="comma-separated command words to speak (default: all ten)")
    parser.add_argument("--unknown-per-voice", type=int, default=defaults.unknown_per_voice,
                        help=f"non-command words per voice (default {defaults.unknown_per_voice})")
    parser.add_argument("--snr-db", type=float, default=defaults.snr_db,
                        help=f"speech-to-noise ratio in dB (default {defaults.snr_db:g})")
    parser.add_argument("--validation-timbres", type=int, default=defaults.validation_timbres,
                        help=f"timbre variants held out for validation (default {defaults.validation_timbres})")
    parser.add_argument("--test-timbres", type=int, default=defaults.test_timbres,
                        help=f"timbre variants held out for test (default {defaults.test_timbres})")


def _summary(counts: Counter) -> str:
    from harness.tasks.speech_commands import CLASSES

    splits = ("train", "validation", "test")
    words = [c for c in CLASSES if c != "_silence_"]
    lines = [f"{'class':<10}" + "".join(f"{s:>12}" for s in splits)]
    lines += [f"{w:<10}" + "".join(f"{counts[s, w]:>12}" for s in splits) for w in words]
    lines.append(f"{'total':<10}" + "".join(f"{sum(v for k, v in counts.items() if k[0] == s):>12}" for s in splits))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from harness.tasks.synth_kws import SynthConfig, generate

    config = SynthConfig(
        seed=args.seed, timbres=args.timbres, words=tuple(w.strip() for w in args.words.split(",") if w.strip()), voices_per_timbre=args.voices_per_timbre, takes=args.takes,
        unknown_per_voice=args.unknown_per_voice, snr_db=args.snr_db,
        validation_timbres=args.validation_timbres, test_timbres=args.test_timbres,
    )
    counts, written = generate(args.out, config)
    if not written:
        print(f"{args.out}: already holds this dataset (same settings); nothing to do")
        return 0
    print(f"wrote {sum(counts.values())} word clips to {args.out} (silence is cut from _background_noise_ at load time)")
    print(_summary(counts))
    return 0
