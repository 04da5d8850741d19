"""Which environment made a run's numbers, and where several runs' environments differ.

A ratio between two runs made with different torch, transformers, numba or mamba-ssm versions,
scan backends or machines is not a code change; `compare` and `report` name such differences
before they show any ratio. A run resumed on another machine is checked against itself too:
each session of a run records its own environment in run.json.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

# The packages whose version changes what the harness measures.
PACKAGES = ("torch", "transformers", "numba", "mamba-ssm", "causal-conv1d")


def _machine(env: Mapping) -> str:
    gpus = ", ".join(sorted(str(g.get("name", "")) for g in env.get("gpus") or [] if isinstance(g, Mapping)))
    parts = [str(env.get("host", "")), f"{env.get('cpu', '')} x{env.get('cpu_count', '')}"]
    return " / ".join(part for part in (*parts, gpus) if part.strip())


def _session_fields(env: Mapping) -> dict[str, str]:
    packages = env.get("packages") or {}
    fields = {name: str(packages.get(name) or "not installed") for name in PACKAGES}
    fields["machine"] = _machine(env)
    return fields


def _scan_backends(results: pd.DataFrame) -> dict[str, str]:
    """variant -> the scan backends that ran for it ("scan backend[variant]" fields)."""
    if "scan_backend" not in results or "variant" not in results:
        return {}
    ran = results[results["scan_backend"].fillna("").astype(str) != ""]
    return {
        f"scan backend[{variant}]": ", ".join(sorted(set(group["scan_backend"].astype(str))))
        for variant, group in ran.groupby("variant")
    }


def run_environments(meta: Mapping, results: pd.DataFrame) -> list[dict[str, str]]:
    """One field dict per session of a run (its run.json `sessions`, else its `env`)."""
    envs = [s.get("env") for s in meta.get("sessions") or [] if isinstance(s, Mapping) and s.get("env")]
    envs = envs or ([meta["env"]] if isinstance(meta.get("env"), Mapping) else [])
    backends = _scan_backends(results)
    return [{**_session_fields(env), **backends} for env in envs] or [backends]


def differences(environments: Mapping[str, list[dict[str, str]]]) -> list[str]:
    """Label -> that run's session environments  ->  one line per field whose value is not the same
    everywhere, e.g. "transformers: 5.24.0 (before) vs 5.25.0 (after)". Fields a run does not have
    (a scan backend of a variant it did not run) are not compared."""
    values: dict[str, dict[str, list[str]]] = {}
    for label, sessions in environments.items():
        for session in sessions:
            for field_name, value in session.items():
                labels = values.setdefault(field_name, {}).setdefault(value, [])
                if label not in labels:
                    labels.append(label)
    lines = []
    for field_name, by_value in values.items():
        if len(by_value) > 1:
            shown = " vs ".join(f"{value} ({', '.join(labels)})" for value, labels in by_value.items())
            lines.append(f"{field_name}: {shown}")
    return lines


def warning(environments: Mapping[str, list[dict[str, str]]]) -> str | None:
    """One paragraph naming every differing field, or None when the runs' environments agree."""
    lines = differences(environments)
    if not lines:
        return None
    return ("runs made in different environments — a ratio between them is not only a code change: "
            + "; ".join(lines))
