"""Task metrics against values computed by hand (the working is in each test)."""
from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.tasks.metrics import (accuracy, average_precision, bleu, cider_d, macro_f1, mean_average_precision,
                                   rouge_l, tokenize)
from harness.tasks.metrics import java_scorers

CAT = "the cat sat on the mat"
CAT_REFS = ["The cat is on the mat.", "There is a cat on the mat"]


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A dog's bark, then RAIN!") == ["a", "dog's", "bark", "then", "rain"]
    assert tokenize("'quoted' -- words") == ["quoted", "words"]


def test_bleu_one_clip():
    # unigrams: the x2, cat, on, mat match (sat does not): 5/6; bigrams the cat, on the, the mat: 3/5;
    # trigrams: on the mat: 1/4; no 4-gram matches. Closest reference length 6 = hypothesis: no penalty.
    scores = bleu({"a": CAT}, {"a": CAT_REFS})
    assert scores == pytest.approx([5 / 6, math.sqrt(5 / 6 * 3 / 5), (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3), 0.0])


def test_bleu_corpus_sums_counts_and_applies_the_brevity_penalty():
    # clip b: "the cat" vs a 6-token reference: 2/2 unigrams, 1/1 bigram, no trigrams.
    # corpus: unigrams 7/8, bigrams 4/6, trigrams 1/4; c = 8, r = 6 + 6 -> penalty exp(1 - 12/8).
    scores = bleu({"a": CAT, "b": "the cat"}, {"a": CAT_REFS, "b": ["the cat is on the mat"]})
    penalty = math.exp(1 - 12 / 8)
    assert scores[:3] == pytest.approx([penalty * 7 / 8, penalty * math.sqrt(7 / 8 * 4 / 6),
                                        penalty * (7 / 8 * 4 / 6 * 1 / 4) ** (1 / 3)])
    assert bleu({"a": "the cat"}, {"a": ["the cat is on the mat"]})[:2] == pytest.approx([math.exp(-2)] * 2)


def test_bleu_clips_repeated_words():
    # "the the the" against "the cat": "the" counts at most once -> 1/3 (and the penalty exp(1 - 2/3) = 1: c > r).
    assert bleu({"a": "the the the"}, {"a": ["the cat"]}, max_n=1) == pytest.approx([1 / 3])


def test_rouge_l_best_precision_and_recall_over_references():
    # vs ref 1: LCS "the cat on the mat" = 5 -> P = R = 5/6, the best of both; F = 5/6 for any beta.
    assert rouge_l({"a": CAT}, {"a": CAT_REFS}) == pytest.approx(5 / 6)
    # "the cat" vs 6 tokens: P = 1, R = 1/3; F = (1 + 1.2^2) P R / (R + 1.2^2 P).
    expected = 2.44 * (1 / 3) / (1 / 3 + 1.44)
    assert rouge_l({"a": "the cat"}, {"a": ["the cat is on the mat"]}) == pytest.approx(expected)
    assert rouge_l({"a": "rain", "b": "the cat"}, {"a": ["dog"], "b": ["the cat is on the mat"]}) == pytest.approx(expected / 2)


def test_cider_d_identical_captions():
    # Two clips, each n-gram in one clip's references: weight log(2) - log(1) for all, so identical
    # captions have cosine 1 for every n they have: 3 tokens -> n = 1..3 of 4, 2 tokens -> n = 1..2.
    score = cider_d({"a": "a dog barks", "b": "rain falls"}, {"a": ["a dog barks"], "b": ["rain falls"]})
    assert score == pytest.approx((10 * 3 / 4 + 10 * 2 / 4) / 2)


def test_cider_d_clipping_and_length_penalty():
    # "a dog a dog" vs "a dog barks" (weights w = log 2 per count):
    # n=1: hyp a:2w dog:2w, ref a:w dog:w barks:w; clipped dot 2w^2, norms sqrt(8)w, sqrt(3)w -> 2/sqrt(24)
    # n=2: hyp "a dog":2w "dog a":w, ref "a dog":w "dog barks":w -> w^2 / (sqrt(5)w sqrt(2)w) = 1/sqrt(10)
    # n=3: no shared trigram -> 0; n=4: the reference has none -> 0. Length 4 vs 3: exp(-1/72).
    first = 10 * (2 / math.sqrt(24) + 1 / math.sqrt(10)) / 4 * math.exp(-1 / 72)
    score = cider_d({"a": "a dog a dog", "b": "rain falls"}, {"a": ["a dog barks"], "b": ["rain falls"]})
    assert score == pytest.approx((first + 5.0) / 2)


def test_cider_d_of_a_single_clip_is_zero():
    # Every n-gram occurs in the only "document": idf log(1/1) = 0.
    assert cider_d({"a": "a dog barks"}, {"a": ["a dog barks"]}) == 0.0


def test_caption_metrics_need_matching_clips():
    with pytest.raises(ValueError, match="same clips"):
        bleu({"a": "x"}, {"b": ["x"]})
    with pytest.raises(ValueError, match="no reference"):
        rouge_l({"a": "x"}, {"a": []})


def test_accuracy_and_macro_f1():
    truth, predicted = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    assert accuracy(truth, predicted) == 0.5
    # F1: a = 2*1/(2*1+0+1) = 2/3; b = 2/(2+2+0) = 1/2; c = 0 (never predicted)
    assert macro_f1(truth, predicted) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy(["a"], [])


def test_average_precision_and_map():
    # class 0 ranked 0.9 (hit, P=1), 0.8 (miss), 0.3 (hit, P=2/3): AP = (1 + 2/3) / 2
    # class 1 ranked 0.7 (miss), 0.6 (hit, P=1/2), 0.2 (hit, P=2/3): AP = (1/2 + 2/3) / 2
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.6]])
    relevant = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=bool)
    assert average_precision(scores[:, 0], relevant[:, 0]) == pytest.approx(5 / 6)
    assert mean_average_precision(scores, relevant) == pytest.approx((5 / 6 + 7 / 12) / 2)


def test_average_precision_ties_and_empty_classes():
    # The two tied items enter together: precision 1/2 at recall 1.
    assert average_precision(np.array([0.5, 0.5, 0.1]), np.array([False, True, False])) == pytest.approx(0.5)
    assert math.isnan(average_precision(np.array([0.3, 0.2]), np.array([False, False])))
    # A class nobody belongs to is left out of the mean.
    assert mean_average_precision(np.array([[0.9, 0.5], [0.1, 0.4]]), np.array([[1, 0], [0, 0]], dtype=bool)) == 1.0


# ----------------------------------------------------------------------------- Java scorers


def test_java_scorers_skip_without_their_jar(monkeypatch):
    monkeypatch.delenv(java_scorers.METEOR_ENV, raising=False)
    monkeypatch.delenv(java_scorers.SPICE_ENV, raising=False)
    for scorer in (java_scorers.meteor, java_scorers.spice):
        result = scorer({"a": "x"}, {"a": ["x"]})
        assert result.status == "skipped" and math.isnan(result.value) and "jar" in result.note


def _fake_java(folder: Path, body: str) -> None:
    """A `java` on PATH that is a Python script: records its arguments, then runs `body`."""
    folder.mkdir()
    script = folder / "java"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nargs = sys.argv[1:]\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_meteor_runs_the_jar_with_equal_reference_counts(tmp_path: Path, monkeypatch):
    log = tmp_path / "log.json"
    _fake_java(tmp_path / "bin", f"""
hyp, ref = args[3], args[4]
json.dump({{"args": args, "hyp": open(hyp).read(), "ref": open(ref).read()}}, open({str(log)!r}, "w"))
print("Final score:            0.2512")""")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    jar = tmp_path / "meteor-1.5.jar"
    jar.write_bytes(b"")
    result = java_scorers.meteor({"b": "rain", "a": "a  dog"}, {"a": ["dog", "a dog"], "b": ["rain falls"]}, jar)
    assert (result.status, result.value) == ("ok", 0.2512)
    seen = json.loads(log.read_text())
    assert seen["args"][:3] == ["-Xmx2G", "-jar", str(jar)] and seen["args"][-2:] == ["-r", "2"]
    assert seen["hyp"] == "a dog\nrain\n" and seen["ref"] == "dog\na dog\nrain falls\nrain falls\n"


def test_spice_reads_the_jars_json(tmp_path: Path, monkeypatch):
    _fake_java(tmp_path / "bin", """
items = json.load(open(args[3]))
out = args[args.index("-out") + 1]
json.dump([{"image_id": i["image_id"], "scores": {"All": {"f": 0.5 if i["test"] == i["refs"][0] else 0.1}}} for i in items], open(out, "w"))""")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    jar = tmp_path / "spice-1.0.jar"
    jar.write_bytes(b"")
    result = java_scorers.spice({"a": "dog", "b": "rain"}, {"a": ["dog"], "b": ["wind"]}, jar)
    assert (result.status, result.value) == ("ok", pytest.approx(0.3))


def test_a_failing_jar_is_an_error_score(tmp_path: Path, monkeypatch):
    _fake_java(tmp_path / "bin", "sys.stderr.write('Exception: no WordNet\\n'); sys.exit(1)")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    jar = tmp_path / "meteor.jar"
    jar.write_bytes(b"")
    result = java_scorers.meteor({"a": "x"}, {"a": ["x"]}, jar)
    assert result.status == "error" and "exit code 1: Exception: no WordNet" in result.note
    missing = java_scorers.meteor({"a": "x"}, {"a": ["x"]}, tmp_path / "absent.jar")
    assert missing.status == "error" and "jar not found" in missing.note
