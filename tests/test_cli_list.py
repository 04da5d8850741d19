"""`lalm-bench list KIND`: every kind the README names, each from the list the code uses."""
from __future__ import annotations

import pytest

from harness.cli import main
from harness.commands.list import SECTIONS
from harness.schema import METRIC_UNITS, STATUSES
from harness.suite import MEASURED_PHASES, METERS, suite_names
from models import ALIASES, SCAN_BACKENDS, SIZES, VARIANTS

EXPECTED = {
    "suites": suite_names(),
    "variants": [*VARIANTS, *ALIASES],
    "sizes": list(SIZES),
    "backends": list(SCAN_BACKENDS),
    "phases": list(MEASURED_PHASES),
    "meters": list(METERS),
    "metrics": list(METRIC_UNITS),
    "statuses": list(STATUSES),
}


def test_every_kind_the_readme_names_is_listed():
    assert list(SECTIONS) == list(EXPECTED)


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_kind_lists_every_name_and_only_that_kind(kind, capsys):
    assert main(["list", kind]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in EXPECTED[kind])
    assert ("suites (lalm-bench run NAME)" in listed) == (kind == "suites")  # one kind, not everything


def test_an_unknown_kind_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["list", "banana"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and "invalid choice: 'banana'" in lines[0]
