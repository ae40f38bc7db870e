"""Keep freed heap memory for the next batch instead of handing it back to the kernel.

Each batch allocates and frees a few hundred MiB (a store, parsed quads, result objects,
rendered output). By default glibc returns the freed top of the heap to the kernel at
once, and the next batch faults the same pages in again, each one zeroed by the kernel:
on the 2-core machine that was about 1 s of system time per 50,000 cases and worker
(``benchmarks/bench.py``). A top pad makes glibc keep that much when it trims. It bounds
nothing and frees nothing later: the peak stays what the batches need.
"""

from __future__ import annotations

import ctypes

M_TOP_PAD = -2  # mallopt parameter number in glibc's malloc.h
TOP_PAD = 256 << 20


def keep_freed_memory(pad: int = TOP_PAD) -> bool:
    """Set glibc's top pad for this process (and the processes it forks from now on);
    False where the C library has no ``mallopt`` (macOS, Windows), which changes nothing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_TOP_PAD, pad))
