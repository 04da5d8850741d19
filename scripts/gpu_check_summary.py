"""The one-screen summary of scripts/gpu_check.sh, and its test results merged into one JUnit file.

    python scripts/gpu_check_summary.py STEPS_TSV JUNIT_DIR OUT_DIR [SWEEP_DIR]

STEPS_TSV: one `name<TAB>exit code or 'skipped'<TAB>seconds<TAB>note` line per step, in order.
JUNIT_DIR: one `<step>.xml` per pytest step. Writes OUT_DIR/tests.xml (every step's suites) and
OUT_DIR/summary.txt (also printed): the probe's verdict, each step's outcome with its test counts
(a test step where nothing ran counts as failed: a green line must mean tests passed), the
failed tests' first lines, and the sweep's points. Uses the standard library, and pandas only
for the sweep.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FAILED_LINES = 12  # failed tests listed in full; the rest are counted


def read_steps(path: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        name, code, seconds, note = (line.split("\t") + ["", "", ""])[:4]
        rows.append((name, code, seconds, note))
    return rows


def junit_counts(xml: Path) -> tuple[dict[str, int], list[str], list[ET.Element]]:
    """(passed/failed/skipped counts, 'nodeid - first line' of each failure, the testsuite elements)."""
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            counts["failed"] += 1
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            failures.append(f"{case.get('classname')}::{case.get('name')} - {message[0][:140] if message else ''}")
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failures, suites


def sweep_lines(sweep: Path) -> list[str]:
    """One line per sweep point: what it was, its status, its decode latency and energy per token."""
    if not sweep.is_dir():
        return ["sweep: no run folder"]
    try:
        from harness import store

        results = store.load_run(sweep).results
    except Exception as exc:  # noqa: BLE001 - a broken run folder is reported, not raised
        return [f"sweep: unreadable ({type(exc).__name__}: {exc})"[:200]]
    lines = []
    for _, point in results.groupby("point_id", sort=False):
        first = point.iloc[0]
        decode = point[(point["phase"] == "decode") & (point["metric"] == "latency_ms")]
        failed = point[point["status"] != "ok"]
        shown = decode if len(decode) and decode["status"].iloc[0] != "ok" else failed[failed["phase"] != "decode"]
        status = "ok"
        if len(shown):  # the decode step's failure, else the other phases' (cuda_graph skips them by design)
            row = shown.iloc[0]
            where = "decode" if row["phase"] == "decode" else f"{shown['phase'].nunique()} other phase(s)"
            status = f"{where} {row['status']}: {str(row['error'] or row['note'])[:70]}"
        energy = point[(point["phase"] == "decode") & (point["metric"] == "energy_j")]
        figures = f"decode {decode['value'].iloc[0]:.2f} ms" if len(decode) else "no decode row"
        if len(energy):
            value, note = energy["value"].iloc[0], str(energy["note"].iloc[0])
            figures += f", energy_j {value:.3g}" if value == value else f", energy_j NaN ({note[:50]})"
        lines.append(f"  {first['variant']:11s} {first['dtype']:8s} {first['mode']:10s} "
                     f"{first['scan_backend']:9s} {figures}; {status}")
    return lines or ["sweep: no rows"]


def main(steps_tsv: str, junit_dir: str, out_dir: str, sweep_dir: str = "") -> int:
    out = Path(out_dir)
    merged = ET.Element("testsuites")
    lines = []
    env = out / "env.txt"
    if env.exists():
        wanted = ("gpu", "torch", "driver", "kernels", "nvml energy counter", "nvml sees this process", "verdict")
        lines += [line for line in env.read_text().splitlines() if line.split("  ")[0].strip() in wanted]
        lines.append("")
    lines.append(f"{'step':14s} {'result':10s} {'secs':>5s}  tests / note")
    failures: list[str] = []
    bad_steps = 0
    for name, code, seconds, note in read_steps(Path(steps_tsv)):
        xml = Path(junit_dir) / f"{name}.xml"
        detail = note
        result = "ok" if code == "0" else ("skipped" if code == "skipped" else
                                            "TIMEOUT" if code in ("124", "137") else f"FAILED {code}")
        if xml.exists():
            counts, step_failures, suites = junit_counts(xml)
            merged.extend(suites)
            failures += step_failures
            detail = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped" + (
                f"; {note}" if note else "")
            if counts["passed"] == 0 and result == "ok":
                result = "NOTHING RAN"
        elif result != "ok" and not note and name.startswith("tests-"):
            detail = "no JUnit file (killed before pytest wrote it: see gpu_check.log)"
        bad_steps += result != "ok"
        lines.append(f"{name:14s} {result:10s} {seconds:>5s}  {detail}")
    if failures:
        lines.append("")
        lines.append(f"failed tests ({len(failures)}):")
        lines += [f"  {failure}" for failure in failures[:FAILED_LINES]]
        if len(failures) > FAILED_LINES:
            lines.append(f"  ... and {len(failures) - FAILED_LINES} more (tests.xml)")
    if sweep_dir:
        lines.append("")
        lines.append("sweep points (variant, dtype, mode, scan backend):")
        lines += sweep_lines(Path(sweep_dir))
    lines.append("")
    lines.append(f"steps not ok: {bad_steps}")
    ET.ElementTree(merged).write(out / "tests.xml", encoding="utf-8", xml_declaration=True)
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    print(text, end="")
    return bad_steps


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
