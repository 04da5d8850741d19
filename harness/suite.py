"""Suites: declarative TOML sweeps, validated in full before anything runs, expanded into Points.

A suite file has four parts:

    name = "quick"
    description = "..."
    [grid]      # axes; lists expand into a cartesian product
    variant = ["ast+llama", "dass+mamba"]
    audio_seconds = [1, 2, 4]
    batch_size = [1, 2]
    zip = [["audio_seconds", "new_tokens"]]          # optional: axes that vary together
    exclude = [{variant = "ast+llama", audio_seconds = [3600]}]   # optional: points to drop
    [measure]   # how each point is measured (what the workload receives)
    [run]       # where and how points run (device, timeouts, isolation, executor)

Every mistake (bad TOML, unknown key, wrong type, out-of-range value, unknown variant) becomes
one `UserError` line naming the file or `--set` flag and the key, with a suggestion when a
name is close to a valid one.
"""
from __future__ import annotations

import difflib
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      model_validator)

from harness.errors import UserError
from harness.points import POINT_FIELDS, Point
from harness.schema import DTYPES, INFERENCE_PHASES, MODES, PHASES, STATUSES
from harness.threads import DEFAULT_THREADS
from harness.train_settings import TrainSettings

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
DEVICES = ("auto", "cpu", "cuda")
ISOLATIONS = ("process", "none")
EXECUTORS = ("local", "ray")
# task rows come from the task commands; every point records its model's build
MEASURED_PHASES = tuple(p for p in PHASES if p not in ("task", "build"))
# Meters a suite may ask for; the workload maps each to its harness.measure implementation.
METERS = ("latency", "memory", "state", "flops", "energy", "roofline")
# Axes a grid may sweep: every Point field except the device, which is one per run.
AXES = tuple(f for f in POINT_FIELDS if f != "device")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choice(kind: str, valid: Sequence[str], aliases: dict[str, str] | None = None):
    """An AfterValidator: the value must be one of `valid` (aliases map to their canonical name)."""

    def check(value: str) -> str:
        value = (aliases or {}).get(value, value)
        if value not in valid:
            names = list(valid) + list(aliases or {})
            raise ValueError(f"unknown {kind} {value!r}{did_you_mean(value, names)}; valid: {', '.join(names)}")
        return value

    return AfterValidator(check)


def _model_names() -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...], tuple[str, ...]]:
    from models import ALIASES, SCAN_BACKENDS, SIZES, VARIANTS

    return tuple(VARIANTS), dict(ALIASES), tuple(SIZES), tuple(SCAN_BACKENDS)


_VARIANTS, _ALIASES, _SIZES, _SCAN_BACKENDS = _model_names()


def _as_list(value: Any) -> Any:
    """A scalar axis value means a one-value axis: `size = "tiny"` is `size = ["tiny"]`."""
    return value if isinstance(value, list) else [value]


def _non_empty(values: list) -> list:
    if not values:
        raise ValueError("must list at least one value")
    return values


def _axis(item_type: Any) -> Any:
    return Annotated[list[item_type], BeforeValidator(_as_list), AfterValidator(_non_empty)]


Variant = Annotated[str, _choice("variant", _VARIANTS, _ALIASES)]
Size = Annotated[str, _choice("size", _SIZES)]
Dtype = Annotated[str, _choice("dtype", DTYPES)]
ScanBackend = Annotated[str, _choice("scan backend", _SCAN_BACKENDS)]
Mode = Annotated[str, _choice("mode", MODES)]
Phase = Annotated[str, _choice("phase", MEASURED_PHASES)]
Meter = Annotated[str, _choice("meter", METERS)]
Status = Annotated[str, _choice("status", [s for s in STATUSES if s != "ok"])]
AxisName = Annotated[str, _choice("grid axis", AXES)]
AudioSeconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
BatchSize = Annotated[int, Field(ge=1, le=1 << 16)]
PromptTokens = Annotated[int, Field(ge=0, le=1 << 20)]
NewTokens = Annotated[int, Field(ge=1, le=1 << 20)]


class _Strict(BaseModel):
    # strict: a string "3" for a batch size is a mistake, not something to coerce.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Grid(_Strict):
    """The axes of the sweep. Axes left out take their value from [measure] / [run] / defaults."""

    variant: _axis(Variant)
    size: _axis(Size) = ["tiny"]
    audio_seconds: _axis(AudioSeconds)
    batch_size: _axis(BatchSize) = [1]
    dtype: _axis(Dtype) | None = None  # default: [run].dtype
    prompt_tokens: _axis(PromptTokens) | None = None  # default: [measure].prompt_tokens
    new_tokens: _axis(NewTokens) | None = None  # default: [measure].new_tokens
    scan_backend: _axis(ScanBackend) = ["auto"]
    mode: _axis(Mode) = ["eager"]
    zip: list[list[AxisName]] = []
    exclude: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _check_zip_and_exclude(self) -> Grid:
        seen: set[str] = set()
        for group in self.zip:
            if len(group) < 2:
                raise ValueError(f"zip group {group} must name at least two axes")
            for axis in group:
                if axis in seen:
                    raise ValueError(f"axis {axis!r} is in more than one zip group")
                if getattr(self, axis) is None:
                    raise ValueError(f"zip axis {axis!r} must be set in [grid]")
                seen.add(axis)
            lengths = {axis: len(getattr(self, axis)) for axis in group}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"zip group axes must have equal lengths, got {lengths}")
        named = {"variant": list(_VARIANTS) + list(_ALIASES), "size": _SIZES, "dtype": DTYPES,
                 "scan_backend": _SCAN_BACKENDS, "mode": MODES}
        for rule in self.exclude:
            if not rule:
                raise ValueError("an exclude rule must name at least one axis")
            for key, wanted in rule.items():
                if key not in AXES:
                    raise ValueError(f"exclude: unknown axis {key!r}{did_you_mean(key, AXES)}")
                for value in _as_list(wanted):
                    if key in named and value not in named[key]:
                        raise ValueError(f"exclude: unknown {key} {value!r}{did_you_mean(value, named[key])}")
        return self


class Measure(_Strict):
    """How each point is measured: handed to the workload as its settings.

    Timing per phase: `warmup` untimed runs (and at least `warmup_seconds` of them), then at
    least `repeats` timed runs, more until the spread (IQR / median) is at most
    `target_rel_spread`, stopping at `max_repeats` runs or `max_phase_seconds` of timing.
    """

    phases: list[Phase] = list(INFERENCE_PHASES)
    meters: list[Meter] = ["latency", "memory", "state"]
    warmup: int = Field(default=1, ge=0, le=1000)
    warmup_seconds: float = Field(default=0.0, ge=0)
    repeats: int = Field(default=5, ge=1, le=100_000)
    max_repeats: int = Field(default=100, ge=1, le=100_000)
    max_phase_seconds: float = Field(default=10.0, gt=0)
    target_rel_spread: float = Field(default=0.02, ge=0)
    prompt_tokens: PromptTokens = 8
    new_tokens: NewTokens = 8
    seed: int = 0
    # Also profile each point's phases (torch.profiler): the workload hands back the profile
    # files with the rows, and the store keeps them under <run>/artifacts/<point_id>/.
    profile: bool = False
    train: TrainSettings = TrainSettings()  # the train_step phase: stage, precision, max-batch search

    @model_validator(mode="after")
    def _check_repeats(self) -> Measure:
        if self.max_repeats < self.repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) must be >= repeats ({self.repeats})")
        return self


class RunSettings(_Strict):
    """Where and how points run."""

    device: Annotated[str, _choice("device", DEVICES)] = "auto"
    dtype: Dtype = "float32"
    timeout_s: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)  # per point, model build included
    isolation: Annotated[str, _choice("isolation", ISOLATIONS)] = "process"  # "none": in the driver, for debugging
    memory_limit_mb: int = Field(default=0, ge=0)  # CPU: address space a point may add; 0 = no cap
    skip_larger_after: list[Status] = ["oom", "timeout"]  # a failure skips longer/larger points
    executor: Annotated[str, _choice("executor", EXECUTORS)] = "local"
    address: str = ""  # Ray cluster address; "" starts a local one
    cpus_per_point: int = Field(default=0, ge=0)  # Ray on CPU: 0 = a whole node per point
    # torch CPU threads in the worker (harness.threads: why one by default); 0 = torch's default
    threads: int = Field(default=DEFAULT_THREADS, ge=0, le=1024)
    workload: str = Field(default="harness.workload:measure_point", pattern=r"^[\w.]+:\w+$")


class Suite(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][\w-]*$")
    description: str = Field(min_length=1)
    grid: Grid
    measure: Measure = Measure()
    run: RunSettings = RunSettings()

    @model_validator(mode="after")
    def _check_cross_fields(self, info: ValidationInfo) -> Suite:
        # A stored (resolved) suite lists every default, so "set in both places" means nothing there.
        stored = bool(info.context and info.context.get("stored"))
        for axis, section, setting in (
            ("dtype", "run", "dtype"),
            ("prompt_tokens", "measure", "prompt_tokens"),
            ("new_tokens", "measure", "new_tokens"),
        ):
            if not stored and getattr(self.grid, axis) is not None and setting in getattr(self, section).model_fields_set:
                raise ValueError(f"{axis} is set both as a grid axis and as {section}.{setting}; keep one")
        # The state meter reads the cache the prefill leaves: asked for without that phase, it
        # would record nothing (the default meters include it, so only a written list is checked).
        if (not stored and "meters" in self.measure.model_fields_set and "state" in self.measure.meters
                and "prefill" not in self.measure.phases):
            raise ValueError('measure.meters has "state", which measures the cache the prefill leaves, but '
                             'measure.phases has no "prefill": add it, or drop "state"')
        if self.run.memory_limit_mb and self.run.device == "cuda":
            raise ValueError("run.memory_limit_mb caps CPU address space; CUDA maps large virtual ranges, so it is CPU-only")
        return self

    def with_device(self, device: str) -> Suite:
        """The suite with `run.device` resolved (what a run stores, so a resume re-expands the same points)."""
        return self.model_copy(update={"run": self.run.model_copy(update={"device": device})})


def find_suite(ref: str) -> Path:
    """A suite name (a file in suites/) or a path to a TOML file."""
    path = Path(ref)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UserError(f"suite file {ref} does not exist")
        return path
    for folder in (Path.cwd() / "suites", SUITES_DIR):
        candidate = folder / f"{ref}.toml"
        if candidate.is_file():
            return candidate
    names = suite_names()
    raise UserError(f"unknown suite {ref!r}{did_you_mean(ref, names)}; available: {', '.join(names)}")


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """`--set key.path=value` flags -> {"key.path": value}; values are TOML ("[1, 2]", "true", "3"),
    anything that is not valid TOML is taken as a plain string (`--set run.device=cpu`)."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set run.device=cpu")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        parsed[key] = value
    return parsed


def _apply(raw: dict, overrides: dict[str, Any]) -> dict:
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split(".")
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {'.'.join(parents[: i + 1])} is not a table")
        node[leaf] = value
    return raw


_SECTIONS: dict[str, type[BaseModel]] = {"": Suite, "grid": Grid, "measure": Measure, "measure.train": TrainSettings,
                                         "run": RunSettings}


def _describe(err: dict) -> tuple[str, str]:
    """A pydantic error -> (dotted key, message)."""
    loc = err["loc"]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    if err["type"] == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        known = list(_SECTIONS[parent].model_fields) if parent in _SECTIONS else []
        return key, f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), known)}"
    if err["type"] == "missing":
        return key, "required key is missing"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"].endswith("_type") or err["type"].startswith(("greater", "less")):
        message += f" (got {err['input']!r})"
    return key, message


def validate_suite(raw: dict, source: str, overrides: dict[str, Any] | None = None, stored: bool = False) -> Suite:
    """Raw TOML dict (overrides applied) -> Suite, or one UserError line naming file/flag and key.

    stored: `raw` is a suite as a run stored it (every default spelled out), not as written.
    """
    overrides = overrides or {}
    try:
        return Suite.model_validate(_apply(raw, overrides), context={"stored": stored})
    except ValidationError as exc:
        # Unknown keys first: a misspelt key also makes the real one "missing", and the typo is the cause.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_problem(err, overrides) for err in errors]
        if len(problems) == 1 and problems[0].startswith("--set "):
            raise UserError(problems[0]) from None
        count = f"{len(problems)} problems: " if len(problems) > 1 else ""
        raise UserError(f"{source}: {count}{'; '.join(problems)}") from None


def _problem(err: dict, overrides: dict[str, Any]) -> str:
    """'KEY: message', or '--set FLAG: message' when a --set flag wrote the key, or created the
    unknown key (`--set foo.bar=1` makes a table `foo`)."""
    key, message = _describe(err)
    for flag in overrides:
        if key == flag or key.startswith((flag + ".", flag + "[")):
            return f"--set {key}: {message}"
        if err["type"] == "extra_forbidden" and flag.startswith(key + "."):
            return f"--set {flag}: {message}"
    return f"{key}: {message}" if key else message


def load_suite(ref: str, overrides: Sequence[str] | Mapping[str, Any] = ()) -> tuple[Suite, Path]:
    """Find, parse and validate a suite; returns it with the file it came from.

    overrides: `--set` flags ("key.path=value") or the values by key ({"key.path": value})."""
    path = find_suite(ref)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: invalid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read suite: {err}") from None
    parsed = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return validate_suite(raw, str(path), parsed), path


def _matches(point: Point, rule: dict[str, Any]) -> bool:
    for axis, wanted in rule.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if axis == "variant":
            values = [_ALIASES.get(v, v) for v in values]
        if getattr(point, axis) not in values:
            return False
    return True


def expand(suite: Suite) -> list[Point]:
    """The suite's points in grid order, excluded ones dropped, duplicates (e.g. aliases) once.

    `suite.run.device` must already be resolved to "cpu" or "cuda".
    """
    if suite.run.device not in ("cpu", "cuda"):
        raise ValueError(f"resolve the device before expanding (got {suite.run.device!r})")
    grid = suite.grid
    defaults = {
        "dtype": [suite.run.dtype],
        "prompt_tokens": [suite.measure.prompt_tokens],
        "new_tokens": [suite.measure.new_tokens],
    }
    values = {axis: getattr(grid, axis) if getattr(grid, axis) is not None else defaults[axis] for axis in AXES}
    zipped = {axis for group in grid.zip for axis in group}
    # Each factor is a list of {axis: value} choices; a zip group is one factor.
    factors = [[dict(zip(group, combo)) for combo in zip(*(values[a] for a in group))] for group in grid.zip]
    factors += [[{axis: v} for v in values[axis]] for axis in AXES if axis not in zipped]
    points: dict[str, Point] = {}
    for combo in itertools.product(*factors):
        fields = {k: v for part in combo for k, v in part.items()}
        point = Point(device=suite.run.device, **fields)
        if not any(_matches(point, rule) for rule in grid.exclude):
            points.setdefault(point.id, point)
    return list(points.values())
