"""Keep freed memory in the process for reuse: a glibc malloc setting for PyTorch on the CPU.

A MAML-TRPO meta-step allocates and frees tensors of tens of megabytes hundreds of times: one
``[160k steps, 64 units]`` float32 activation of the paper's HalfCheetah config is 41 MB.
glibc's malloc serves every allocation above its mmap threshold (32 MB at most) with a fresh
``mmap`` and unmaps it on free, so each such tensor is page-faulted in again, 4 KB at a time:
a Fisher-vector product took 850k page faults and spent half its time in them, and the whole
TRPO step ran 2.2x slower (experiments/RESULTS.md, "MAML-TRPO").

:func:`keep_freed_memory` makes malloc serve every allocation from its heap and keep what is
freed for the next allocation, so the working set is faulted in once. The process then keeps
its peak memory (2.3 GB maximum RSS in ``benchmarks/maml_trpo_step.py`` on the paper
config), as PyTorch's own CUDA allocator does on a GPU.
The meta-learners call it when they are made; set ``METARL_DEFAULT_MALLOC=1`` to leave malloc
alone (e.g. when you preload jemalloc or tcmalloc, which avoid the problem their own way).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: The largest trim threshold ``mallopt`` takes (an int): freed memory at the top of the heap
#: is kept up to this size.
_KEEP_BYTES = 2**31 - 1

#: Set this environment variable (to anything non-empty) to leave malloc's settings alone.
OPT_OUT_VARIABLE = "METARL_DEFAULT_MALLOC"

_applied = False


def keep_freed_memory() -> bool:
    """Set glibc malloc to serve all allocations from its heap and keep freed memory.

    Idempotent. Returns whether the setting is in effect: False off Linux with glibc (macOS,
    Windows, musl have other allocators, left alone) or when ``METARL_DEFAULT_MALLOC`` is set.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(OPT_OUT_VARIABLE) or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success. No mmap for large blocks, and no returning the heap's
    # free top to the OS below 2 GB.
    _applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    )
    return _applied
