"""This process's peak resident memory, for the benches that run each case in a process of its own.

On Linux it is the memory map's own high-water mark (`VmHWM`). `ru_maxrss` is not: it keeps the
parent's across fork and exec, so a case run beside a bench that had built its models reads the
bench's peak instead of its own (two different UNet loads both read 14.55 GiB that way).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_resident_bytes() -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # macOS, Windows: no /proc
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, the rest KiB
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024
