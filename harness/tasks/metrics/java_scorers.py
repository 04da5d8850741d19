"""METEOR and SPICE through their reference Java implementations, when the user has them.

Neither can be reimplemented faithfully here (METEOR needs WordNet synonyms and paraphrase
tables, SPICE a scene-graph parser), and neither jar can be downloaded at run time. So each runs
only when Java is on PATH and the jar is given (argument, or LALM_METEOR_JAR / LALM_SPICE_JAR);
otherwise the score is NaN with status "skipped" and a note saying what is missing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

METEOR_ENV = "LALM_METEOR_JAR"
SPICE_ENV = "LALM_SPICE_JAR"
TIMEOUT_S = 3600
_FINAL_SCORE = re.compile(r"Final score:\s*([0-9.eE+-]+)")


@dataclass(frozen=True)
class JavaScore:
    metric: str
    value: float
    status: str  # "ok" | "skipped" | "error"
    note: str = ""


def _requirements(metric: str, jar: str | Path | None, env: str, heap: str) -> list[str] | JavaScore:
    """The command that runs the jar when Java and the jar exist, else the skipped score saying which one is missing."""
    jar = jar or os.environ.get(env)
    java = shutil.which("java")
    if not jar:
        return JavaScore(metric, float("nan"), "skipped", f"needs its jar (pass it or set {env}); not available offline")
    if java is None:
        return JavaScore(metric, float("nan"), "skipped", "needs Java on PATH")
    if not Path(jar).is_file():
        return JavaScore(metric, float("nan"), "error", f"{jar}: jar not found")
    return [java, f"-Xmx{heap}", "-jar", str(jar)]


def _run(metric: str, command: list[str]) -> subprocess.CompletedProcess | JavaScore:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return JavaScore(metric, float("nan"), "error", f"timed out after {TIMEOUT_S} s")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return JavaScore(metric, float("nan"), "error", f"exit code {done.returncode}: {tail[0]}")
    return done


def meteor(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]], jar: str | Path | None = None) -> JavaScore:
    """Corpus METEOR 1.5 (English, normalised), from the jar's plain-text batch mode."""
    java = _requirements("meteor", jar, METEOR_ENV, heap="2G")
    if isinstance(java, JavaScore):
        return java
    keys = sorted(hypotheses)
    width = max(len(references[k]) for k in keys)
    with tempfile.TemporaryDirectory() as tmp:
        hyp_file, ref_file = Path(tmp, "hyp.txt"), Path(tmp, "ref.txt")
        hyp_file.write_text("".join(f"{_one_line(hypotheses[k])}\n" for k in keys))
        # Batch mode wants the same number of references per clip: repeat the last ones, which
        # leaves METEOR unchanged (it scores against the best matching reference).
        refs = [list(references[k]) + [references[k][-1]] * (width - len(references[k])) for k in keys]
        ref_file.write_text("".join(f"{_one_line(r)}\n" for group in refs for r in group))
        done = _run("meteor", java + [str(hyp_file), str(ref_file), "-l", "en", "-norm", "-r", str(width)])
    if isinstance(done, JavaScore):
        return done
    match = _FINAL_SCORE.search(done.stdout)
    if match is None:
        return JavaScore("meteor", float("nan"), "error", "no 'Final score' line in the jar's output")
    return JavaScore("meteor", float(match.group(1)), "ok")


def spice(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]], jar: str | Path | None = None) -> JavaScore:
    """Mean SPICE F-score over clips, from the jar's JSON interface."""
    java = _requirements("spice", jar, SPICE_ENV, heap="8G")  # its parser needs the room
    if isinstance(java, JavaScore):
        return java
    items = [{"image_id": k, "test": hypotheses[k], "refs": list(references[k])} for k in sorted(hypotheses)]
    with tempfile.TemporaryDirectory() as tmp:
        source, result = Path(tmp, "in.json"), Path(tmp, "out.json")
        source.write_text(json.dumps(items))
        done = _run("spice", java + [str(source), "-out", str(result), "-subset", "-silent"])
        if isinstance(done, JavaScore):
            return done
        try:
            scores = [float(item["scores"]["All"]["f"]) for item in json.loads(result.read_text())]
        except (OSError, ValueError, KeyError, TypeError) as err:
            return JavaScore("spice", float("nan"), "error", f"unreadable SPICE output ({err})")
    return JavaScore("spice", float(np.mean(scores)), "ok")


def _one_line(text: str) -> str:
    return " ".join(text.split())
