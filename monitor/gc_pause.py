"""Pause Python's cyclic garbage collector around allocation-heavy work.

Parsing a page of a thousand records, and normalizing, classifying and storing them,
allocates hundreds of thousands of containers that never form cycles. Each of them
counts towards the collector's thresholds, so it runs full passes over everything alive
again and again for nothing: about a tenth of a first sync's time. Pausing it for the
span of one page costs nothing in memory beyond that page, and anything cyclic made
meanwhile is collected once the pause ends.

Pauses nest and may overlap across threads (a poll's download thread and its writer):
the collector is re-enabled when the last pause ends, and only if it was enabled before
the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
