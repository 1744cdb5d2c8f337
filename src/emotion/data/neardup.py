"""Perceptual hashes and a Hamming-radius index for near-duplicate search.

pHash (imagehash) gives each image a 64-bit code; images within a small Hamming distance are the
same picture re-encoded, resized, brightened or slightly cropped. :class:`HammingIndex` finds
all codes within radius ``r`` without comparing every pair: by the pigeonhole principle two codes
within distance ``r`` agree exactly on at least one of ``r + 1`` disjoint bit blocks, so only
codes sharing a block value are compared.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable

import imagehash
import numpy as np
from PIL import Image

HASH_BITS = 64


def phash(image: Image.Image | np.ndarray) -> int:
    """The 64-bit perceptual hash of an image as an unsigned integer."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    bits = imagehash.phash(image, hash_size=8).hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance between uint64 codes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.uint64(a), np.asarray(b, dtype=np.uint64)))


def _blocks(radius: int) -> list[tuple[int, int]]:
    n = radius + 1
    edges = np.linspace(0, HASH_BITS, n + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]


class HammingIndex:
    """Codes searchable for neighbours within a fixed Hamming ``radius`` (multi-index hashing).

    Inserting and querying cost about the size of the matching buckets, not the index size, so
    checking each new image against 100k+ accepted ones stays fast.
    """

    def __init__(self, radius: int) -> None:
        if not 0 <= radius < 32:
            raise ValueError(f"Hamming radius must be in [0, 32), got {radius}")
        self.radius = radius
        self._blocks = _blocks(radius)
        self._tables: list[defaultdict[int, list[int]]] = [defaultdict(list) for _ in self._blocks]
        self._codes = np.zeros(1024, dtype=np.uint64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _keys(self, code: int) -> Iterable[int]:
        for lo, hi in self._blocks:
            yield (code >> lo) & ((1 << (hi - lo)) - 1)

    def add(self, code: int) -> int:
        """Insert a code; returns its id (insertion order)."""
        idx = self._size
        if idx == len(self._codes):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
        self._codes[idx] = code
        self._size += 1
        for table, key in zip(self._tables, self._keys(int(code)), strict=True):
            table[key].append(idx)
        return idx

    def query(self, code: int) -> list[int]:
        """Ids of stored codes within the radius of ``code``, ascending."""
        candidates: set[int] = set()
        for table, key in zip(self._tables, self._keys(int(code)), strict=True):
            candidates.update(table.get(key, ()))
        if not candidates:
            return []
        ids = np.fromiter(sorted(candidates), dtype=np.int64, count=len(candidates))
        return ids[hamming(int(code), self._codes[ids]) <= self.radius].tolist()

    def contains_near(self, code: int) -> bool:
        """Whether any stored code lies within the radius of ``code``."""
        return bool(self.query(code))


def _pairs_in_equal_runs(keys: np.ndarray) -> np.ndarray:
    """All (i, j), i < j, with keys[i] == keys[j]."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    out = []
    for size in np.unique(sizes[sizes > 1]):
        groups = order[starts[sizes == size][:, None] + np.arange(size)]  # (G, size)
        a, b = np.triu_indices(size, k=1)
        out.append(np.stack([groups[:, a].ravel(), groups[:, b].ravel()], axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def near_pairs(codes: np.ndarray, radius: int) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose codes are within ``radius``; shape (P, 2).

    Vectorised multi-index hashing: candidate pairs share one of ``radius + 1`` bit blocks
    exactly, then each candidate's full distance is checked.
    """
    codes = np.asarray(codes, dtype=np.uint64)
    candidates = []
    for lo, hi in _blocks(radius):
        keys = (codes >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        candidates.append(_pairs_in_equal_runs(keys))
    pairs = np.concatenate(candidates).astype(np.int64)
    pairs = pairs[hamming(codes[pairs[:, 0]], codes[pairs[:, 1]]) <= radius]
    pairs.sort(axis=1)
    flat = np.unique(pairs[:, 0] * len(codes) + pairs[:, 1])  # a pair can share several blocks
    return np.stack([flat // len(codes), flat % len(codes)], axis=1)
