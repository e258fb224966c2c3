"""Keep Python's cyclic garbage collector out of the way of a poll, with memory still bounded.

Parsing a page of a thousand records, and normalizing, classifying and storing them,
allocates hundreds of thousands of containers that never form cycles. With the default
threshold (a collection every 700 net allocations) the collector scans them again and
again for nothing; pausing it per page (what this module did first) still costs one scan
of everything alive when each pause ends: the next page, already downloaded, and the
current one — measured, a tenth of a first sync's time for 64 cyclic objects a page.

The collector counts *net* allocations: freeing an object takes it back. A poll's memory
is flat (one page in hand, one ahead), so its count rises and falls with each page and,
with a threshold well above one page's worth, only cyclic garbage — which never comes
back — makes it climb. Raising the first generation's threshold for the span of a poll
therefore skips the useless scans, while the garbage it leaves is still bounded by the
threshold: should something produce cycles by the thousand, collections happen again.

The count is of objects, not bytes: a cycle that holds a large buffer counts as a few
objects. httpx's responses are such cycles (response and stream refer to each other), so
the client keeps page bodies off them (monitor.registry.paced.PacedClient._body), and the sync runs a
young-generation pass every few pages in case some other library does the same.

Relaxations nest and may overlap across threads (a poll and its download thread, which
parses pages under its own relaxation): the threshold is restored when the last one ends.
A collector that was switched off, or had a higher threshold already, is left as it was.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Several pages' worth of net allocations (a page of 1,000 records is about 100,000):
# never reached by a poll's own flat memory, reached by 400,000 objects of cyclic garbage.
RELAXED_THRESHOLD = 400_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def gc_relaxed() -> Iterator[None]:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            current = gc.get_threshold()
            if 0 < current[0] < RELAXED_THRESHOLD:
                _saved = current
                gc.set_threshold(RELAXED_THRESHOLD, current[1], current[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
