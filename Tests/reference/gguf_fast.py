"""gguf-py's GGUFReader, its code unchanged, reading a plain ndarray view of its memory map.

GGUFReader slices its `np.memmap` once per key, string and array element, and numpy runs Python
code (memmap's __array_finalize__ and __getitem__) on every slice of a memmap: opening a GGUF with
SmolLM2's 49,152-token vocabulary took 4.7 CPU seconds, 1.7 s on a plain view of the same
read-only map. Use `from gguf_fast import GGUFReader` where `from gguf import GGUFReader` was, and
GGUFTensorReader where only the tensors (and scalar keys) are read.
"""
import struct

import numpy as np
from gguf import GGUFValueType, gguf_reader
from gguf.gguf_reader import GGUFReader  # noqa: F401  (the reader scripts import from here)


class _PlainMaps:
    """numpy, except that `memmap(...)` returns the map viewed as a plain ndarray."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def memmap(path, mode="r", **kwargs):
        return np.memmap(path, mode=mode, **kwargs).view(np.ndarray)


gguf_reader.np = _PlainMaps()


class GGUFTensorReader(GGUFReader):
    """GGUFReader for scripts that read tensors only: array-valued keys (a vocabulary's tokens, scores
    and merges) are stepped over, one raw part each, instead of parsed element by element. Scalars,
    strings and the tensors read as GGUFReader reads them."""

    def _get_field_parts(self, orig_offs, raw_type):
        if GGUFValueType(raw_type) != GGUFValueType.ARRAY or self.byte_order != "I":
            return super()._get_field_parts(orig_offs, raw_type)
        size = _array_bytes(self.data, orig_offs)
        return size, [self._get(orig_offs, np.uint8, size)], [], [GGUFValueType.ARRAY]


def _array_bytes(data, offs):
    """Byte length of the array value at `offs` (little-endian): item type, count, then the items."""
    itype, count = struct.unpack_from("<IQ", data, offs)
    p = offs + 12
    if itype == GGUFValueType.STRING:
        for _ in range(count):
            p += 8 + struct.unpack_from("<Q", data, p)[0]
    elif itype == GGUFValueType.ARRAY:
        for _ in range(count):
            p += _array_bytes(data, p)
    else:
        p += count * np.dtype(GGUFReader.gguf_scalar_to_np[GGUFValueType(itype)]).itemsize
    return p - offs
