"""Reports from run folders: analysis (numbers), figures, and Markdown/HTML rendering, kept apart.

`build_report(run_dirs, out_dir)` is the entry point used by `lalm-bench report`.
"""
from harness.report.build import build_report

__all__ = ["build_report"]
