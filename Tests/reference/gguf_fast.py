"""gguf-py's GGUFReader, its code unchanged, reading a plain ndarray view of its memory map.

GGUFReader slices its `np.memmap` once per key, string and array element, and numpy runs Python
code (memmap's __array_finalize__ and __getitem__) on every slice of a memmap: opening a GGUF with
SmolLM2's 49,152-token vocabulary took 4.7 CPU seconds, 1.7 s on a plain view of the same
read-only map. Use `from gguf_fast import GGUFReader` where `from gguf import GGUFReader` was.
"""
import numpy as np
from gguf import gguf_reader
from gguf.gguf_reader import GGUFReader  # noqa: F401  (the reader scripts import from here)


class _PlainMaps:
    """numpy, except that `memmap(...)` returns the map viewed as a plain ndarray."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def memmap(path, mode="r", **kwargs):
        return np.memmap(path, mode=mode, **kwargs).view(np.ndarray)


gguf_reader.np = _PlainMaps()
