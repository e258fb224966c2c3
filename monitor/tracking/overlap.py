"""Work that overlaps the poll's main thread: downloading the next page while this one is
written, compressing a page in one GIL-free call while it is normalized. Threads only
for work that leaves the GIL; everything else stays on the main thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from monitor.registry.client import Page

A = TypeVar("A")

R = TypeVar("R")


def prefetched(pages: Iterator[Page]) -> Iterator[Page]:
    """Download the next page while the current one is written: at most one page ahead,
    so memory stays flat; an error in the download surfaces where the page would have."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for page in pages:
                if not offer(("page", page)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer(("error", exc))

    thread = threading.Thread(target=worker, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def in_background(fn: Callable[[A], R], arg: A) -> Callable[[], R]:
    """Start `fn(arg)` on a thread of its own; the returned function waits for its result
    (or raises its error). For work that releases the GIL, so that it truly overlaps."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, fn(arg)))
        except BaseException as exc:  # handed to whoever waits, raised there
            box.append((False, exc))

    thread = threading.Thread(target=run, name="background", daemon=True)
    thread.start()

    def result() -> R:
        thread.join()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    return result
