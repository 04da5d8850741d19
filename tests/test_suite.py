"""Suites: shipped suites are valid, grids expand as written, and every mistake is one clear UserError."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.points import Point
from harness.suite import expand, load_suite, suite_names

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("quick", "scaling-length", "scaling-batch", "long-audio", "paper", "matched", "kernels")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """
name = "t"
description = "test suite"
[grid]
variant = ["ast+llama", "dass+mamba"]
audio_seconds = [1, 2, 4]
batch_size = [1, 2]
[run]
device = "cpu"
"""


def test_every_shipped_suite_is_valid_and_expands_to_distinct_points():
    assert set(SHIPPED) <= set(suite_names())
    for name in SHIPPED:
        suite, path = load_suite(name)
        assert suite.name == name and path.stem == name
        points = expand(suite.with_device("cpu"))
        assert points and len({p.id for p in points}) == len(points)


def test_scaling_length_doubles_from_one_second_to_an_hour():
    suite, _ = load_suite("scaling-length")
    lengths = suite.grid.audio_seconds
    assert lengths[0] == 1 and lengths[-1] == 3600
    assert all(b == 2 * a for a, b in zip(lengths[:-2], lengths[1:-1]))


def test_grid_is_a_cartesian_product_with_defaults_from_measure_and_run(tmp_path):
    suite, _ = load_suite(str(write(tmp_path, BASE + 'dtype = "bfloat16"\n[measure]\nnew_tokens = 3\n')))
    points = expand(suite)
    assert len(points) == 2 * 3 * 2
    assert {(p.variant, p.audio_seconds, p.batch_size) for p in points} == {
        (v, float(a), b) for v in ("ast+llama", "dass+mamba") for a in (1, 2, 4) for b in (1, 2)}
    assert {p.dtype for p in points} == {"bfloat16"} and {p.new_tokens for p in points} == {3}
    assert {p.device for p in points} == {"cpu"}


def test_zip_groups_vary_together_and_exclude_rules_drop_points(tmp_path):
    text = BASE.replace("[run]", 'new_tokens = [4, 8, 16]\nzip = [["audio_seconds", "new_tokens"]]\n'
                                 'exclude = [{variant = "transformer", audio_seconds = [4]}]\n[run]')
    points = expand(load_suite(str(write(tmp_path, text)))[0])
    assert {(p.audio_seconds, p.new_tokens) for p in points} == {(1.0, 4), (2.0, 8), (4.0, 16)}
    assert not [p for p in points if p.variant == "ast+llama" and p.audio_seconds == 4]
    assert len(points) == 2 * 3 * 2 - 2


def test_aliases_name_the_same_points_once(tmp_path):
    text = BASE.replace('variant = ["ast+llama", "dass+mamba"]', 'variant = ["ssm", "dass+mamba", "transformer"]')
    points = expand(load_suite(str(write(tmp_path, text)))[0])
    assert {p.variant for p in points} == {"dass+mamba", "ast+llama"} and len(points) == 2 * 3 * 2


def test_set_overrides_any_field_with_toml_values(tmp_path):
    path = str(write(tmp_path, BASE))
    suite, _ = load_suite(path, ["grid.audio_seconds=[8]", "grid.variant=ssm", "measure.repeats=7", "run.timeout_s=5"])
    assert suite.grid.audio_seconds == [8.0] and suite.grid.variant == ["dass+mamba"]
    assert suite.measure.repeats == 7 and suite.run.timeout_s == 5


def test_point_id_is_a_stable_hash_of_the_fields_alone():
    point = Point("dass+mamba", "tiny", "cpu", "float32", 2, 10, 8, 4)
    assert point.id == Point("dass+mamba", "tiny", "cpu", "float32", 2, 10.0, 8, 4).id
    assert point.id != Point("dass+mamba", "tiny", "cpu", "float32", 2, 10.0, 8, 5).id
    assert hash(point) == hash(Point.from_dict(point.as_dict()))
    # Same id in another interpreter with another hash seed: what resume and cross-run joins rely on.
    code = "from harness.points import Point; print(Point('dass+mamba','tiny','cpu','float32',2,10,8,4).id)"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == point.id


BAD = {
    "malformed TOML": (BASE + "[grid\n", None, "invalid TOML"),
    "unknown key with suggestion": (BASE.replace("batch_size =", "batch_sise ="), None,
                                    "unknown key 'batch_sise' (did you mean 'batch_size'?)"),
    "unknown section key": (BASE + "[measure]\nrepeat = 3\n", None, "did you mean 'repeats'?"),
    "wrong type": (BASE.replace("batch_size = [1, 2]", 'batch_size = ["1"]'), None, "grid.batch_size[0]"),
    "zero length": (BASE.replace("[1, 2, 4]", "[0, 2]"), None, "greater than 0"),
    "negative batch": (BASE.replace("batch_size = [1, 2]", "batch_size = [-1]"), None, "greater than or equal to 1"),
    "unknown variant": (BASE.replace('"dass+mamba"', '"dass+mambo"'), None, "did you mean 'dass+mamba'?"),
    "empty axis": (BASE.replace("[1, 2, 4]", "[]"), None, "at least one value"),
    "missing grid key": (BASE.replace("audio_seconds = [1, 2, 4]\n", ""), None, "grid.audio_seconds: required"),
    "bad --set key": (BASE, ["grid.varient=ssm"], "--set grid.varient: unknown key 'varient' (did you mean 'variant'?)"),
    "bad --set value": (BASE, ["measure.repeats=0"], "--set measure.repeats"),
    "--set without =": (BASE, ["run.device"], "expected KEY=VALUE"),
    "--set of an unknown table": (BASE, ["foo.bar=1"], "--set foo.bar: unknown key 'foo'"),
    "state meter without prefill": (BASE, ['measure.phases=["encoder"]', 'measure.meters=["latency", "state"]'],
                                    'measure.phases has no "prefill"'),
    "zip of unequal axes": (BASE.replace("[run]", 'zip = [["audio_seconds", "batch_size"]]\n[run]'), None,
                            "equal lengths"),
    "axis set twice": (BASE.replace("[run]", 'new_tokens = [1]\n[measure]\nnew_tokens = 2\n[run]'), None,
                       "set both as a grid axis and as measure.new_tokens"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_suites_are_one_line_user_errors_naming_the_key(tmp_path, case):
    text, overrides, expected = BAD[case]
    with pytest.raises(UserError) as err:
        load_suite(str(write(tmp_path, text)), overrides or [])
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_every_problem_of_a_suite_is_named_in_its_one_line(tmp_path):
    text = BASE.replace("batch_size =", "batch_sise =").replace("[run]", "[run]\nthreadz = 2")
    with pytest.raises(UserError) as err:
        load_suite(str(write(tmp_path, text)), ["measure.repeats=0"])
    message = str(err.value)
    assert message.startswith(f"{tmp_path}") and "3 problems: " in message and "\n" not in message
    for problem in ("grid.batch_sise: unknown key", "run.threadz: unknown key", "--set measure.repeats: "):
        assert problem in message


def test_the_default_meters_need_no_prefill(tmp_path):
    suite, _ = load_suite(str(write(tmp_path, BASE)), ['measure.phases=["encoder"]'])
    assert "state" in suite.measure.meters and suite.measure.phases == ["encoder"]


def test_unknown_suite_name_suggests_a_shipped_one():
    with pytest.raises(UserError, match="did you mean 'quick'"):
        load_suite("quik")
