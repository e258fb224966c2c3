"""The relaxed garbage collector: nests, overlaps across threads, restores what it found,
and still collects once cyclic garbage reaches the raised threshold."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from monitor.gc_relax import RELAXED_THRESHOLD, gc_relaxed


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_the_threshold_is_raised_inside_and_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    with gc_relaxed():
        assert gc.get_threshold() == (RELAXED_THRESHOLD, 10, 10)
        with gc_relaxed():
            assert gc.get_threshold()[0] == RELAXED_THRESHOLD
        assert gc.get_threshold()[0] == RELAXED_THRESHOLD  # the outer relaxation still holds
    assert gc.get_threshold() == (700, 10, 10)


def test_an_exception_still_restores_the_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), gc_relaxed():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_collector_that_was_off_or_already_lax_is_left_alone() -> None:
    gc.set_threshold(0, 10, 10)  # a threshold of 0 switches collection off
    with gc_relaxed():
        assert gc.get_threshold() == (0, 10, 10)
    gc.set_threshold(RELAXED_THRESHOLD * 2, 10, 10)
    with gc_relaxed():
        assert gc.get_threshold()[0] == RELAXED_THRESHOLD * 2
    assert gc.get_threshold()[0] == RELAXED_THRESHOLD * 2


def test_overlapping_relaxations_in_two_threads_end_with_the_last() -> None:
    gc.set_threshold(700, 10, 10)
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_relaxed():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with gc_relaxed():
        thread.start()
        assert inside.wait(5)
    assert gc.get_threshold()[0] == RELAXED_THRESHOLD  # this thread's ended, the other's has not
    release.set()
    thread.join(5)
    assert gc.get_threshold() == (700, 10, 10)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_objects_that_come_and_go_do_not_trigger_collections() -> None:
    """A poll's memory is flat; the collector counts net allocations, so it stays quiet."""
    gc.enable()
    gc.collect()
    runs: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with gc_relaxed():
            for _ in range(20):
                page = [{"id": i, "sites": [{"n": i}]} for i in range(20_000)]  # 40,000 containers
                del page
    finally:
        gc.callbacks.remove(count)
    assert runs == []


def test_cyclic_garbage_is_still_collected_past_the_threshold() -> None:
    gc.enable()
    gc.collect()
    with gc_relaxed():
        for _ in range(RELAXED_THRESHOLD + 10_000):
            _Node()
        assert gc.get_count()[0] < RELAXED_THRESHOLD  # a collection ran and freed the cycles
