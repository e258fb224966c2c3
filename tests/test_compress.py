"""Snapshot compression: one record at a time or a page at once, the same bytes either way."""

from __future__ import annotations

import threading

import pytest
import zstandard

from monitor import store
from monitor.core.normalize import raw_json
from monitor.store import blobs as store_blobs
from monitor.tracking.overlap import in_background
from tests.conftest import registry_records


def _blobs() -> list[bytes]:
    return [raw_json(r) for r in registry_records()]


def test_a_page_compressed_at_once_is_byte_for_byte_what_one_at_a_time_gives() -> None:
    blobs = _blobs()
    packed = store.compress_many(blobs)
    assert packed == [store.compress(b) for b in blobs]
    assert [zstandard.ZstdDecompressor().decompress(p) for p in packed] == blobs
    assert store.compress_many([]) == []


def test_without_the_c_backends_batch_call_it_compresses_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoBatch:  # what the CFFI backend offers: compress, but no multi_compress_to_buffer
        def __init__(self) -> None:
            self.inner = zstandard.ZstdCompressor(level=3)

        def compress(self, data: bytes) -> bytes:
            return self.inner.compress(data)

    monkeypatch.setattr(store_blobs, "_compressor", NoBatch)
    blobs = _blobs()[:5]
    assert store.compress_many(blobs) == [zstandard.ZstdCompressor(level=3).compress(b) for b in blobs]


def test_background_work_returns_its_result_or_raises_its_error_where_awaited() -> None:
    names: list[str] = []

    def work(x: int) -> int:
        names.append(threading.current_thread().name)
        return x * 2

    assert in_background(work, 21)() == 42
    assert names == ["background"]

    def fail(_: int) -> int:
        raise ValueError("bad blob")

    wait = in_background(fail, 1)
    with pytest.raises(ValueError, match="bad blob"):
        wait()
