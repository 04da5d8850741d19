"""Profiling: where the time and memory go inside an LALM, module by module.

`profile_point(lalm, inputs, phases, out_dir)` profiles phases into files (trace, module and
operator tables, CUDA memory snapshots, summary.md) and returns results-table rows; the
`lalm-bench profile` command and suite points with `profile = true` both use it.
"""
from harness.profile.phase import ProfileSettings
from harness.profile.point import SUMMARY, profile_files, profile_point

__all__ = ["ProfileSettings", "SUMMARY", "profile_files", "profile_point"]
