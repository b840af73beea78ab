"""A bounded cache of node outputs, least recently used first out, keyed by Merkle hashes."""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


def estimate_nbytes(value: Any, _seen: set[int] | None = None) -> int:
    """Rough memory held by a value: tensors, arrays and images by their buffers, containers recursively.

    Values may define ``cache_nbytes()`` to answer for themselves (model handles sharing weights do).
    Objects already counted (shared between outputs) count once.
    """
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    custom = getattr(value, "cache_nbytes", None)
    if callable(custom):
        return int(custom())
    if hasattr(value, "element_size") and hasattr(value, "numel"):  # torch.Tensor, without importing torch
        return int(value.element_size() * value.numel())
    if hasattr(value, "nbytes") and isinstance(getattr(value, "nbytes", None), int):  # numpy
        return int(value.nbytes)
    if hasattr(value, "size") and hasattr(value, "mode") and hasattr(value, "getbands"):  # PIL image
        width, height = value.size
        return width * height * len(value.getbands())
    if isinstance(value, dict):
        return sum(estimate_nbytes(k, seen) + estimate_nbytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(estimate_nbytes(v, seen) for v in value)
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    return sys.getsizeof(value)


@dataclass
class CacheEntry:
    node: str
    type: str
    outputs: dict[str, Any]
    nbytes: int


def default_max_bytes() -> int:
    """Half the machine's memory: loaded models are the largest entries and must fit to be reused."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


class OutputCache:
    """Node outputs by cache key, bounded by entry count and by bytes (default: half the RAM).

    :meth:`put` returns the entries it evicted, so the executor can report them.
    """

    def __init__(self, max_entries: int = 4096, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: CacheEntry) -> list[CacheEntry]:
        """Store an entry; returns what was evicted (the entry itself if it can never fit)."""
        if entry.nbytes > self.max_bytes or self.max_entries <= 0:
            return [entry]
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._entries[key] = entry
        self.nbytes += entry.nbytes
        evicted: list[CacheEntry] = []
        while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
            _, victim = self._entries.popitem(last=False)
            self.nbytes -= victim.nbytes
            evicted.append(victim)
        return evicted

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
