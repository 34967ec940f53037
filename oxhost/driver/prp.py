"""Building PRP1/PRP2 (and PRP lists) for a transfer (NVMe 1.2, 4.3)."""
import numpy as np

from .dmamem import PAGE, DmaBuffer


class PrpBuilder:
    """Owns one list page per queue slot; lists chain when a transfer needs more."""

    ENTRIES = PAGE // 8

    def __init__(self, list_buf: DmaBuffer):
        self._buf = list_buf
        self._u64 = list_buf.array.view("<u8")

    def prps(self, addr: int, nbytes: int) -> tuple[int, int]:
        """PRP1, PRP2 for a buffer contiguous in guest RAM starting at addr."""
        offset = addr % PAGE
        npages = (offset + nbytes + PAGE - 1) // PAGE
        if npages <= 1:
            return addr, 0
        first = addr - offset
        if npages == 2:
            return addr, first + PAGE
        rest = npages - 1
        if rest > self.ENTRIES:
            raise ValueError(f"transfer of {nbytes} bytes needs more than one PRP list page")
        u64 = self._u64
        u64[:rest] = np.arange(first + PAGE, first + PAGE * npages, PAGE, dtype=np.uint64)
        return addr, self._buf.addr
