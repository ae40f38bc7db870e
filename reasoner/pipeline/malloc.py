"""Keep freed heap memory for the next batch instead of handing it back to the kernel.

Each batch allocates and frees a few hundred MiB (a store, parsed quads, result objects,
rendered output). By default glibc returns the freed top of the heap to the kernel at
once, and the next batch faults the same pages in again, each one zeroed by the kernel:
on the 2-core machine that was about 1 s of system time per 50,000 cases and worker
(``benchmarks/bench.py``). A top pad makes glibc keep that much when it trims. It bounds
nothing and frees nothing later: the peak stays what the batches need.

Setting the pad also stops glibc from raising its mmap threshold as large blocks are freed,
so the threshold stays wherever the process had brought it: a rendered batch of results (a
few MiB) and the buffers it is sent and received in were then mapped and faulted in afresh
for every batch in a process that had freed no large block before (the parent reading FHIR
Bundles: about 0.2 s of system time per 10,000 cases), and not in one that had (the parent
reading N-Triples in 8 MiB blocks). The threshold is set with the pad, to glibc's own
largest: such blocks come from the heap, and are kept like the rest.
"""

from __future__ import annotations

import ctypes

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # mallopt parameter numbers in glibc's malloc.h
TOP_PAD = 256 << 20
MMAP_THRESHOLD = 32 << 20
"""glibc's largest dynamic mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)."""


def keep_freed_memory(pad: int = TOP_PAD) -> bool:
    """Set glibc's top pad and mmap threshold for this process (and the processes it forks
    from now on); False where the C library has no ``mallopt`` (macOS, Windows), which
    changes nothing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_TOP_PAD, pad)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
