"""A gate session as JSON: the committed baseline and any saved current run share this format.

The file holds every kernel's normalised samples (what the statistics compare), a summary
for people, the settings that produced them and a fingerprint of the machine, so a verdict
against a baseline recorded elsewhere can say how elsewhere it was.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
from pathlib import Path

import numpy as np
import psutil
import torch
from pydantic import BaseModel

from harness.env import cpu_name
from harness.errors import UserError
from harness.gate import json_file
from harness.gate.kernels import KERNELS
from harness.gate.timing import Session

SCHEMA_VERSION = 2  # 2: per-kernel copy_weight
# Fingerprint fields whose difference makes a cross-machine comparison worth a warning.
COMPARABLE_FIELDS = ("host_id", "cpu_model", "logical_cores", "torch", "device_name", "threads", "clock")


class Fingerprint(BaseModel):
    """The machine and software a session ran on."""

    cpu_model: str
    logical_cores: int
    physical_cores: int
    memory_gib: float
    os: str
    python: str
    torch: str
    numpy: str
    device: str
    device_name: str
    threads: int
    clock: str
    # Which machine: two VMs of one kind share CPU name and core count but not wall-clock speed.
    # None in records made before it was kept (their machine is unknown).
    host_id: str | None = None


class Settings(BaseModel):
    """How the session was measured (`rounds`: how many it took)."""

    rounds: int
    clean_samples: int
    budget_s: float
    target_ms: float
    seed: int


class KernelRecord(BaseModel):
    """One kernel's samples: normalised (compared), whether each ran unpreempted, the copy's
    weight in the calibration unit they were divided by, and a summary of the compared samples
    (for people)."""

    shape: str
    inner: int
    copy_weight: float
    normalised: list[float]
    clean: list[bool]
    median: float
    p10: float
    p90: float
    raw_ms_median: float


class GateRecord(BaseModel):
    """A whole gate session."""

    schema_version: int = SCHEMA_VERSION
    created: str
    fingerprint: Fingerprint
    settings: Settings
    duration_s: float
    calibration_ms: dict[str, float]  # median per-call time of each calibration workload
    kernels: dict[str, KernelRecord]


MIN_CLEAN = 10  # fewer clean samples than this, and a comparison falls back to all samples


def compared_samples(kernel: KernelRecord, use_clean: bool) -> np.ndarray:
    """The normalised samples a comparison uses: the clean ones, or all of them."""
    values = np.asarray(kernel.normalised)
    return values[np.asarray(kernel.clean, dtype=bool)] if use_clean else values


def enough_clean(kernel: KernelRecord) -> bool:
    return sum(kernel.clean) >= MIN_CLEAN


def host_id() -> str:
    """A short hash of this machine's identity: its systemd/D-Bus machine id and its host name.

    A VM cloned from an image may keep the image's machine id; the host name tells the clones apart.
    """
    machine = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(path).read_text().strip()
            break
        except OSError:
            continue
    return hashlib.sha256(f"{machine}|{platform.node()}".encode()).hexdigest()[:16]


def same_machine(baseline: Fingerprint, current: Fingerprint) -> bool:
    """Whether both were measured on this very machine (unknown counts as another)."""
    return baseline.host_id is not None and baseline.host_id == current.host_id


def fingerprint(device: torch.device, threads: int, clock: str) -> Fingerprint:
    """Describe this machine and software stack."""
    return Fingerprint(
        cpu_model=cpu_name(),
        logical_cores=os.cpu_count() or 0,
        physical_cores=psutil.cpu_count(logical=False) or 0,
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        os=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        numpy=np.__version__,
        device=device.type,
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        threads=threads,
        clock=clock,
        host_id=host_id(),
    )


def from_session(session: Session, machine: Fingerprint, settings: Settings) -> GateRecord:
    """Summarise a measured session into its JSON record."""
    kernels = {}
    for name, samples in session.kernels.items():
        use = samples.clean if samples.clean.sum() >= MIN_CLEAN else np.ones_like(samples.clean)
        p10, median, p90 = np.quantile(samples.normalised[use], [0.1, 0.5, 0.9])
        kernels[name] = KernelRecord(
            shape=KERNELS[name].shape,
            inner=samples.inner,
            copy_weight=samples.copy_weight,
            normalised=[float(x) for x in samples.normalised],
            clean=[bool(c) for c in samples.clean],
            median=float(median),
            p10=float(p10),
            p90=float(p90),
            raw_ms_median=float(np.median(samples.raw_s[use]) * 1e3),
        )
    return GateRecord(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        fingerprint=machine,
        settings=settings,
        duration_s=round(session.duration_s, 2),
        calibration_ms={name: float(np.median(t) * 1e3) for name, t in session.calibration_s.items()},
        kernels=kernels,
    )


def save(record: GateRecord, path: Path) -> None:
    """Write `record` to `path` atomically."""
    json_file.save(record, path)


def load(path: Path) -> GateRecord:
    """Read a record; a missing, unreadable or malformed file is a UserError naming it."""
    record = json_file.load(GateRecord, path, "gate record", SCHEMA_VERSION)
    for name, k in record.kernels.items():
        if len(k.normalised) < 2 or len(k.clean) != len(k.normalised):
            raise UserError(f"gate record {path}: kernel {name!r} needs >= 2 samples and one clean flag per sample")
    return record


def fingerprint_differences(baseline: Fingerprint, current: Fingerprint) -> list[str]:
    """'field: baseline -> current' for each comparable field that differs."""
    return [
        f"{field}: {getattr(baseline, field)} -> {getattr(current, field)}"
        for field in COMPARABLE_FIELDS
        if getattr(baseline, field) != getattr(current, field)
    ]
