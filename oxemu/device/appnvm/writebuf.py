"""The device's volatile write buffer: user sectors wait here until a whole write unit
(one page on every plane of a LUN, 8 sectors by default) can be programmed (SPEC 6).

Sectors in the buffer are acknowledged but not durable: a drive without power-loss
protection (identify VWC=1). FLUSH, FUA, shutdown and reset program it, padded.
"""
from collections import deque

import numpy as np


class WriteBuffer:
    """One unit being filled, slot by slot: the bytes. The L2P points at a slot as
    CACHE_BASE + slot; which LBA a slot holds and the durable copy that stays valid until
    it reaches media are the Mapping's (Mapping.buffer and the buffer rule)."""

    __slots__ = ("unit_secs", "sector_nbytes", "data", "n")

    def __init__(self, unit_secs: int, sector_nbytes: int):
        self.unit_secs = unit_secs
        self.sector_nbytes = sector_nbytes
        self.data = np.zeros(unit_secs * sector_nbytes, dtype=np.uint8)
        self.n = 0

    @property
    def full(self) -> bool:
        return self.n == self.unit_secs

    def put(self, data: np.ndarray) -> np.ndarray:
        """Buffer len(data) // sector_nbytes sectors (they fit in the unit); returns their
        slots, for the Mapping to point the LBAs at."""
        sb = self.sector_nbytes
        k = data.size // sb
        s = self.n
        self.data[s * sb:(s + k) * sb] = data
        self.n = s + k
        return np.arange(s, s + k, dtype=np.uint32)

    def put_one(self, data: np.ndarray) -> int:
        """put() of one sector: its slot."""
        sb, s = self.sector_nbytes, self.n
        self.data[s * sb:(s + 1) * sb] = data
        self.n = s + 1
        return s

    def reset(self) -> None:
        """The unit was programmed: the buffer is empty."""
        self.n = 0


class BufferClock:
    """Timing of the buffer: a unit's data is accepted once a buffer slot is free, i.e.
    once the program of the unit `depth` units earlier has ended (timing model)."""

    __slots__ = ("depth", "_ends")

    def __init__(self, depth: int):
        self.depth = depth
        self._ends = deque()

    def admit(self, now: int) -> int:
        if len(self._ends) >= self.depth:
            return max(now, self._ends.popleft())
        return now

    def programmed(self, end: int) -> None:
        self._ends.append(end)

    def drained(self, now: int) -> int:
        """When every unit in flight has reached media (a FLUSH completes)."""
        return max(now, max(self._ends, default=now))
