"""`lalm-bench --help`, the command list and `lalm-bench list` stay light: no torch, transformers or pandas.

Those take seconds to import; a newcomer's first command should not pay for them
(docs/PERF.md has the measured start-up time, scripts/cli_startup_time.py measures it).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.cli import build_parser, command_modules

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "pandas")


def _imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    last = out.stdout.splitlines()[-1] if out.stdout.strip() else ""
    return [m for m in last.split(",") if m]


def test_importing_the_cli_and_building_its_parser_imports_no_heavy_library():
    assert _imported_after("import harness.cli\nharness.cli.build_parser()") == []


def test_help_lists_every_command_without_importing_them_heavily():
    assert _imported_after("import harness.cli\ntry:\n    harness.cli.main(['--help'])\nexcept SystemExit:\n    pass") == []


def test_list_checks_every_suite_without_importing_a_heavy_library():
    # Every suite is validated against the model names, the training stages and the schema.
    assert _imported_after("import harness.cli\nharness.cli.main(['list'])") == []


def test_every_command_module_is_discovered_and_parses_its_own_arguments():
    modules = command_modules()
    assert {"run", "list", "generate", "profile", "train", "eval", "accuracy", "gate"} <= set(modules)
    args = build_parser("generate").parse_args(["generate", "ssm", "clip.wav", "--threads", "2"])
    assert args.threads == 2 and args.device == "cpu" and args._run is modules["generate"].run


def test_run_refuses_an_unknown_suite_and_shows_its_help_without_torch_or_transformers():
    # The run folder's tables need pandas; the models and the meters wait for a sweep to start.
    for argv in (["run", "nosuch"], ["run", "--help"]):
        code = f"import harness.cli\ntry:\n    harness.cli.main({argv!r})\nexcept SystemExit:\n    pass"
        assert set(_imported_after(code)) <= {"pandas"}, argv
