"""Guest RAM: one page-aligned anonymous mapping that numpy and the guest CPU share."""
import mmap

import numpy as np


class GuestRam:
    """Anonymous memory (zero pages until touched, so RSS grows with use)."""

    def __init__(self, size: int):
        if size <= 0 or size % mmap.PAGESIZE:
            raise ValueError(f"guest RAM size must be a positive multiple of {mmap.PAGESIZE}")
        self.size = size
        self._mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.array = np.frombuffer(self._mm, dtype=np.uint8)
        self.address = self.array.ctypes.data   # host address unicorn maps

    def close(self) -> None:
        """Power off: the pages go back to the system now, even while a view of them
        is still alive somewhere (it reads zeros; the GC frees the mapping later)."""
        self.array = None
        if self._mm.closed:
            return
        self._mm.madvise(mmap.MADV_DONTNEED)
        try:
            self._mm.close()
        except BufferError:
            pass
