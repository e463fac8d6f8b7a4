"""Shared by the ``bench_*.py`` scripts: the machine line each prints before its results.

    from _common import machine_line
    print(machine_line())

(a script's own folder is on ``sys.path`` when it is run as ``python benchmarks/perf/...``).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

#: Packages whose versions the machine line gives (read from their metadata: nothing is
#: imported, so printing the line starts no numba thread pool).
VERSIONED = ("numpy", "numba", "simpy")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str | None:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (AttributeError, OSError, ValueError):  # not POSIX
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_line(*extra: str) -> str:
    """``machine: <OS>, <CPU>, <n> CPUs, <RAM>, Python x.y.z, numpy …, numba …, simpy …``
    followed by ``extra`` (e.g. the numba thread count or the input used)."""
    parts = [platform.platform(), _cpu_model(), f"{os.cpu_count()} CPUs", _memory_gib(),
             f"Python {platform.python_version()}",
             *(f"{dist} {_version(dist)}" for dist in VERSIONED), *extra]
    return "machine: " + ", ".join(p for p in parts if p)
