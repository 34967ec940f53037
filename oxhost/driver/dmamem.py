"""Guest-RAM allocator for DMA buffers (the guest kernel's dma_alloc_coherent)."""
import bisect

import numpy as np

from .errors import OutOfDmaMemory

PAGE = 4096


class DmaBuffer:
    """A page-aligned extent of guest RAM: `addr` for the device, `array` for the host."""

    __slots__ = ("addr", "nbytes", "array", "_pool")

    def __init__(self, addr: int, nbytes: int, array: np.ndarray, pool):
        self.addr = addr
        self.nbytes = nbytes
        self.array = array
        self._pool = pool

    def free(self) -> None:
        if self._pool is not None:
            self._pool.release(self.addr, self.nbytes)
            self._pool = None
            self.array = None


class DmaPool:
    """First-fit allocator over [base, size) of guest RAM, page granular."""

    def __init__(self, ram: np.ndarray, base: int):
        self._ram = ram
        self._starts = [base]
        self._ends = [ram.shape[0] - ram.shape[0] % PAGE]

    def alloc(self, nbytes: int, zero: bool = True) -> DmaBuffer:
        size = max(PAGE, -(-nbytes // PAGE) * PAGE)
        for i, (s, e) in enumerate(zip(self._starts, self._ends)):
            if e - s >= size:
                if e - s == size:
                    del self._starts[i], self._ends[i]
                else:
                    self._starts[i] = s + size
                view = self._ram[s:s + nbytes]
                if zero:
                    view[:] = 0
                return DmaBuffer(s, nbytes, view, self)
        raise OutOfDmaMemory(f"no {size} bytes of free guest RAM for DMA (raise ram_mib)")

    def release(self, addr: int, nbytes: int) -> None:
        size = max(PAGE, -(-nbytes // PAGE) * PAGE)
        i = bisect.bisect_left(self._starts, addr)
        self._starts.insert(i, addr)
        self._ends.insert(i, addr + size)
        if i + 1 < len(self._starts) and self._ends[i] == self._starts[i + 1]:   # merge right
            self._ends[i] = self._ends.pop(i + 1)
            self._starts.pop(i + 1)
        if i > 0 and self._ends[i - 1] == self._starts[i]:                         # merge left
            self._ends[i - 1] = self._ends.pop(i)
            self._starts.pop(i)

    @property
    def free_nbytes(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends))
