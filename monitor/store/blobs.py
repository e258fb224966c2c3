"""Raw records as stored: zstd-compressed canonical JSON.

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import zstandard

# zstd: a third of zlib's time at a better ratio (the sync compresses every new record version).
_ZSTD_LEVEL = 3

_compressors = threading.local()  # a compressor is reused, but not shared between threads


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_compressors, "zstd", None)
    if compressor is None:
        compressor = _compressors.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def compress(raw_json: bytes) -> bytes:
    return _compressor().compress(raw_json)


def compress_many(blobs: Sequence[bytes]) -> list[bytes]:
    """`compress` of each blob, in one call that releases the GIL for all of them.

    The sync compresses a page's new records on a second thread while it normalizes and
    classifies them. Compressing them one call at a time there would not overlap: each
    call hands the GIL back and waits up to the interpreter's switch interval (5 ms) to
    get it again. `multi_compress_to_buffer` (zstandard's C backend) does the whole list
    in one; the output frames are the same as `compress` makes. Where the backend lacks
    it (the CFFI one), this is a plain loop.
    """
    if not blobs:
        return []
    try:
        frames = _compressor().multi_compress_to_buffer(list(blobs))
    except (AttributeError, NotImplementedError):
        return [compress(b) for b in blobs]
    return [frame.tobytes() for frame in frames]


def decompress_bytes(blob: bytes) -> bytes:
    """The record's bytes as stored: the registry's own, as it sent them."""
    return zstandard.ZstdDecompressor().decompress(blob)


def decompress(blob: bytes) -> Any:
    return json.loads(decompress_bytes(blob))
