"""The client over real HTTP on loopback leaves no page body to the garbage collector.

During a poll the collector is relaxed (monitor.gc_relax) and counts objects, not bytes:
a body kept in a reference cycle would stay until the poll ends. httpx's responses form
such a cycle with their stream, so the client reads bodies as a stream and keeps them off
the response. This holds it to that.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from monitor.config import ApiSettings
from monitor.registry.client import CtGovClient
from monitor.registry.localserver import LocalApiServer


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def test_no_page_body_is_left_in_a_reference_cycle(api: LocalApiServer, saved_garbage: list[object]) -> None:
    with CtGovClient(ApiSettings(base_url=api.base_url, min_interval_seconds=0, page_size=5)) as client:
        pages = list(client.iter_pages({"query.term": "ALL"}))
        assert len(pages) >= 2 and client.requests == len(pages)
        del pages
        gc.collect()
    bodies = [
        r for o in saved_garbage for r in gc.get_referents(o) if isinstance(r, bytes) and len(r) > 5_000
    ]
    assert bodies == []
