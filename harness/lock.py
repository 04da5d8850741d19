"""The committed lock (requirements/lock.txt) against what this interpreter has installed.

The lock pins every dependency but torch exactly (pip-compile output: `name==version` lines);
torch is pinned apart in requirements/torch.txt, since a GPU machine keeps its own CUDA build of
it. Both are read here without pip, with `packaging`'s parsers, so `lalm-bench env --check`
works in any environment.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.env import REPO_ROOT
from harness.errors import UserError

LOCK = REPO_ROOT / "requirements" / "lock.txt"
TORCH_PIN = REPO_ROOT / "requirements" / "torch.txt"
# Installed but never in the lock: the project itself and the installers.
NOT_LOCKED = frozenset({"lalm-bench", "pip", "wheel"})


@dataclass(frozen=True)
class Difference:
    """One package whose installed version is not the pinned one. installed/pinned: '' for none."""

    package: str
    installed: str
    pinned: str
    source: str  # the file that pins it

    @property
    def kind(self) -> str:
        if not self.pinned:
            return "not in the lock"
        if not self.installed:
            return "missing"
        return "other version"


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file -> {canonical name: version}.

    Comments, blank lines and pip options (`-c file`) are skipped; anything else that is not an
    exact pin is bad input, named with its line.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"lock file {path}: cannot read it ({err.strerror or err})") from None
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            if spec.operator != "==" or "*" in spec.version:
                raise ValueError
            Version(spec.version)
        except (InvalidRequirement, InvalidVersion, ValueError):
            raise UserError(f"lock file {path}, line {number}: {raw.strip()!r} is not an exact pin "
                            "(name==version)") from None
        pins[canonicalize_name(requirement.name)] = spec.version
    if not pins:
        raise UserError(f"lock file {path}: no pinned package in it")
    return pins


def installed() -> dict[str, str]:
    """{canonical name: version} of every distribution this interpreter can import from."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # the first one on sys.path wins, as it does for imports
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def _same(installed_version: str, pinned: str) -> bool:
    """Equal as releases; a local label (+cpu, +cu128) is the build, not the version."""
    try:
        return Version(installed_version).public == Version(pinned).public
    except InvalidVersion:
        return installed_version == pinned


def check(lock: Path = LOCK, torch_pin: Path = TORCH_PIN) -> list[Difference]:
    """Every difference between the installed packages and the lock (+ the torch pin), by name."""
    pins = {name: (version, lock) for name, version in read_pins(lock).items()}
    if torch_pin.exists():
        pins.update({name: (version, torch_pin) for name, version in read_pins(torch_pin).items()})
    have = installed()
    differences = [
        Difference(name, have.get(name, ""), version, source.name)
        for name, (version, source) in pins.items()
        if not _same(have.get(name, ""), version)
    ]
    differences += [
        Difference(name, version, "", lock.name)
        for name, version in have.items()
        if name not in pins and name not in NOT_LOCKED
    ]
    return sorted(differences, key=lambda d: (d.kind, d.package))
