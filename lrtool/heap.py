"""Keep freed CPU memory for reuse, so a training step does not page-fault its activations back in.

Every CPU training step allocates and frees the same activation and gradient buffers. glibc's
malloc hands the freed top of its heap back to the kernel once it exceeds a trim threshold (twice
the largest chunk seen so far, a few MB), so the next step faults every page of those buffers in
again and the kernel zeroes each one. On a small CNN that is thousands of page faults a step and
up to 15% of its time, and 3 to 9% of ``lrtool find``'s sweep (``python
benchmarks/freed_memory.py``). PyTorch's CUDA caching allocator keeps GPU memory for the same
reason; on the CPU it relies on malloc.

:func:`retain_freed_memory` raises the trim threshold, so freed memory stays in the heap for the
next step. The memory kept is memory the run already used, so the peak grows only through
fragmentation (0.5 to 3% in that benchmark). It is a setting of the whole process, so only the
commands that own their process call it (``lrtool find``, ``train``, ``compare`` and compare's
workers); library calls such as ``find_lr`` leave the user's process alone, and a script that
owns its process may call it itself.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 30  # free memory kept at the heap top before it is given back
# Setting the trim threshold turns off glibc's dynamic thresholds, which would leave the mmap
# threshold at its 128 KiB start, so each buffer above that would be its own mmap, unmapped on
# free and faulted in again. 32 MiB is the most glibc accepts and what its dynamic rule reaches.
MMAP_THRESHOLD = 32 << 20
OPT_OUT = "LRTOOL_RETAIN_FREED_MEMORY"  # "0" keeps malloc's defaults


def _address_space_limited() -> bool:
    try:
        import resource
    except ImportError:  # not on this platform
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft not in (resource.RLIM_INFINITY, -1)


def retain_freed_memory() -> bool:
    """Keep up to 1 GiB of freed memory in the heap instead of returning it to the kernel.

    Returns whether the setting was applied: only on Linux with glibc, not when the
    environment variable ``LRTOOL_RETAIN_FREED_MEMORY`` is ``0``, and not under an
    address-space limit (``ulimit -v``): there memory kept counts against the limit, and near
    it a process whose heap keeps everything spent minutes failing allocations instead of
    stopping with an error. Elsewhere it does nothing (other allocators, such as macOS's or
    jemalloc, cache freed memory on their own terms).
    """
    if os.environ.get(OPT_OUT, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    if _address_space_limited():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no glibc (musl, static builds)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
