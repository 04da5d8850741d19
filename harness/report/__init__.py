"""Reports from run folders: analysis (numbers), figures, and Markdown/HTML rendering, kept apart.

`build_report(run_dirs, out_dir)` is the entry point used by `lalm-bench report`.
"""
from harness.report.build import build_report, default_out_dir

__all__ = ["build_report", "default_out_dir"]
