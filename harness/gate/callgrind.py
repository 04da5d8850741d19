"""Callgrind's client requests from Python, and reading what callgrind dumps.

The requests are macros of <valgrind/callgrind.h>: magic instruction sequences that callgrind
acts on and that do nothing outside valgrind. A five-function C library wrapping them is built
with the system C compiler on first use, into `.cache/gate/` (ignored by git), and loaded with
ctypes. With them a process started under ``valgrind --tool=callgrind --instr-atstart=no`` runs
uninstrumented (interpreter start, imports, model building) and counts only between
`Callgrind.start` and `Callgrind.stop`; `dump(name)` writes the counts since the last `zero` to
their own file, whose description names the kernel.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import UserError

HEADER = "valgrind/callgrind.h"
CLIENT_SOURCE = """\
#include <valgrind/callgrind.h>
int lalm_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void lalm_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void lalm_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void lalm_zero(void) { CALLGRIND_ZERO_STATS; }
void lalm_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "gate"
DUMP_PREFIX = "kernel:"  # the dump reason, then the kernel's name


def compiler() -> str | None:
    """The C compiler to build the client with: $CC, cc or gcc."""
    for candidate in (os.environ.get("CC"), "cc", "gcc"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def unavailable() -> str | None:
    """Why instruction counting cannot run here (one line), or None when it can (the client
    library then exists: building it is the test that the compiler and the header are there)."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed"
    try:
        client_library()
    except UserError as err:
        return str(err)
    return None


def client_library(cache_dir: Path | None = None) -> Path:
    """The compiled client library in `cache_dir` (default `CACHE_DIR`), built once per source
    text (the file name holds its hash)."""
    cache_dir = cache_dir or CACHE_DIR
    digest = hashlib.sha256(CLIENT_SOURCE.encode()).hexdigest()[:12]
    target = cache_dir / f"callgrind_client-{digest}.so"
    if target.is_file():
        return target
    cc = compiler()
    if cc is None:
        raise UserError("count mode needs a C compiler (cc or gcc) to build callgrind's client requests")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        source, built = Path(tmp) / "client.c", Path(tmp) / "client.so"
        source.write_text(CLIENT_SOURCE)
        result = subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", "-o", str(built), str(source)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no output"])[0]
            raise UserError(f"building callgrind's client requests failed (is {HEADER} installed?): {first}")
        os.replace(built, target)  # atomic: a concurrent gate never loads half a library
    return target


class Callgrind:
    """The client requests of a built library (`client_library`), callable from Python."""

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._lib.lalm_dump.argtypes = [ctypes.c_char_p]

    @property
    def running_on_valgrind(self) -> bool:
        return bool(self._lib.lalm_running_on_valgrind())

    def start(self) -> None:
        """Instrument from here on (callgrind retranslates the code it runs next)."""
        self._lib.lalm_start()

    def stop(self) -> None:
        self._lib.lalm_stop()

    def zero(self) -> None:
        """Forget the counts collected so far."""
        self._lib.lalm_zero()

    def dump(self, kernel: str) -> None:
        """Write the counts since the last `zero` to a file that names `kernel`, and reset them."""
        self._lib.lalm_dump(f"{DUMP_PREFIX}{kernel}".encode())


def parse_dump(path: Path) -> tuple[str | None, dict[str, int]]:
    """(kernel name or None, {event: total}) of one callgrind output file.

    The kernel comes from the dump's trigger line (None for the final dump at exit), the totals
    from its `events:` and `summary:` (or `totals:`) lines.
    """
    kernel, events, totals = None, None, None
    marker = f"desc: Trigger: Client Request: {DUMP_PREFIX}"
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(marker):
            kernel = line[len(marker):].strip()
        elif line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            totals = [int(x) for x in line.split()[1:]]
        if events is not None and totals is not None:
            break  # the header is over; the per-function lines are not needed
    if events is None or totals is None:
        raise ValueError(f"{path}: not a callgrind output file (no events/summary line)")
    # Trailing zero events may be left out of the summary line.
    return kernel, dict(zip(events, totals + [0] * (len(events) - len(totals))))
