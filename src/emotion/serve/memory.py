"""Memory a burst of large requests took goes back to the operating system afterwards.

glibc's ``malloc`` raises its mmap threshold each time a large block is freed (up to 32 MiB on
64-bit), so after a burst of big images later buffers of that size come from the heap, whose
freed pages the process keeps: RSS stays at the burst's peak. Fixing the threshold (which turns
the dynamic rule off) makes every block of at least ``MMAP_THRESHOLD`` (image buffers, decodes,
large model batches) its own mapping, returned on ``free``, while smaller ones stay on the fast
heap path; fewer arenas bound the heap each thread keeps. ONNX Runtime's arena shrinks after
large batches for the same reason (:mod:`emotion.serve.onnx_model`), and when the last
prediction in flight ends the server trims the heaps (:func:`trim_heap`). Elsewhere than glibc
this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
from dataclasses import dataclass

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: blocks of this size and more are mapped on their own
MMAP_THRESHOLD = 4 * 1024 * 1024
#: free heap memory above this at the top of the heap is returned at once
TRIM_THRESHOLD = 1024 * 1024
#: malloc arenas (glibc's default is 8 per core)
ARENA_MAX = 2


_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and platform.libc_ver()[0] == "glibc":
        _libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return _libc


def trim_heap() -> None:
    """Give free heap pages back to the system now (glibc's ``malloc_trim``: every arena,
    free pages inside the heap too), after a burst has left the heaps fragmented."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@dataclass
class HeapTrimmer:
    """When to :func:`trim_heap`: as the last prediction in flight ends after costly ones (an
    explanation, or a decode through the large-image gate), at most once per ``interval`` s."""

    interval: float = 1.0
    costly: bool = False  #: a costly request ended since the last trim
    decodes_seen: int = 0  #: the gate's large-decode count at the last trim
    last: float = 0.0  #: when the heaps were last trimmed (time.monotonic)

    def due(self, *, explained: bool, large_decodes: int, in_flight: int, now: float) -> bool:
        """Record a finished request; True when the heaps should be trimmed now."""
        self.costly |= explained or large_decodes != self.decodes_seen
        if not (self.costly and in_flight == 0 and now - self.last > self.interval):
            return False
        self.costly, self.decodes_seen, self.last = False, large_decodes, now
        return True


def return_freed_memory() -> bool:
    """Configure glibc's malloc for a long-running server (see above); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_ARENA_MAX, ARENA_MAX),
    )
    done = all(libc.mallopt(option, value) == 1 for option, value in settings)
    if not done:
        log.warning("glibc mallopt refused a setting; memory may stay at its peak after bursts")
    return done
