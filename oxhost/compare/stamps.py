"""What lets every read of a compare run be checked: each written sector starts with an
(LBA, generation) stamp, a shadow holds the generation each sector should have, and a
read's stamps are compared with it.

The engine writes from one buffer and reads into another, both in the device's DMA
memory when it has some (BlockDevice.buf_alloc: the block device then moves no bounce
copy, as for the FUSE edge). The write buffer holds the run's payload pattern once, so
a request only rewrites the 16-byte stamps of its own sectors: its bytes are the payload
prefix of its length with those stamps, the same bytes a fresh copy would hold."""
from __future__ import annotations

import struct

import numpy as np

_PAIR = struct.Struct("<QQ")                # a sector's first 16 bytes: LBA, generation
_MIN_NBYTES = 1 << 20


class Shadow:
    """Generation per sector of what the device should hold (0 = never written or
    discarded)."""

    def __init__(self, nsectors: int):
        self.gen = np.zeros(nsectors, dtype=np.uint64)
        self.counter = 0


def stamp(lba: int, gen: int) -> np.ndarray:
    """The 16 bytes a sector of generation gen written at lba starts with."""
    return np.frombuffer(_PAIR.pack(lba, gen), dtype=np.uint8)


def check(buf: np.ndarray, lba: int, sector: int, shadow: Shadow) -> int:
    """Number of sectors of `buf` (sectors lba..) whose stamp disagrees with the shadow:
    a written sector must carry its LBA and generation, a sector never written (or
    discarded) no stamp of a generation."""
    n = buf.nbytes // sector
    if n == 1:                                  # a 4 KiB read: plain integers
        got_lba, got_gen = _PAIR.unpack_from(buf)
        want = shadow.gen.item(lba)
        return int(got_gen != want or got_lba != lba) if want else int(got_gen != 0)
    words = buf[:n * sector].view("<u8").reshape(n, sector // 8)
    want = shadow.gen[lba:lba + n]
    written = want > 0
    gens = words[:, 1]
    bad = written & ((gens != want) | (words[:, 0] != np.arange(lba, lba + n, dtype=np.uint64)))
    never = ~written & (gens != 0)
    return int(np.count_nonzero(bad) + np.count_nonzero(never))


class StampedIO:
    """The engine's write and read buffers on one block device (see the module's
    docstring); `payload` is the pattern every write's bytes are a prefix of."""

    def __init__(self, bdev, payload: np.ndarray, sector: int):
        self.bdev = bdev
        self.sector = sector
        self.size = bdev.size
        self.payload = payload
        self.nbytes = 0
        self._grow(_MIN_NBYTES)

    def _alloc(self, nbytes: int) -> np.ndarray:
        from ..driver.errors import OutOfDmaMemory
        try:
            return self.bdev.buf_alloc(nbytes)
        except OutOfDmaMemory:                  # a small guest RAM: bounce copies it is
            return np.zeros(nbytes, dtype=np.uint8)

    def _grow(self, nbytes: int) -> None:
        n = max(nbytes, 2 * self.nbytes, _MIN_NBYTES)
        n = -(-n // self.sector) * self.sector
        self.wbuf = self._alloc(n)
        self.wbuf[:] = np.resize(self.payload, n)
        self.rbuf = self._alloc(n)
        self._w64 = self.wbuf.view("<u8").reshape(-1, self.sector // 8)
        self._w1 = self.wbuf[:self.sector]
        self.nbytes = n

    def data(self, lba: int, nsec: int, gen: int) -> np.ndarray:
        """The bytes of a write of nsec sectors at lba, generation gen: a view of the
        write buffer, valid until the next call."""
        n = nsec * self.sector
        if n > self.nbytes:
            self._grow(n)
        if nsec == 1:
            _PAIR.pack_into(self.wbuf, 0, lba, gen)
            return self._w1
        w = self._w64
        w[:nsec, 0] = np.arange(lba, lba + nsec, dtype=np.uint64)
        w[:nsec, 1] = gen
        return self.wbuf[:n]

    def read(self, off: int, n: int) -> np.ndarray:
        """Read n bytes at off (whole sectors) into the read buffer: a view of it, valid
        until the next call."""
        if n > self.nbytes:
            self._grow(n)
        if 0 < n and off + n <= self.size:      # BlockDevice.read's own path, without its checks
            return self.bdev.read_into(off // self.sector, n // self.sector, self.rbuf)
        return self.bdev.read(off, n, out=self.rbuf)

    def write(self, off: int, data: np.ndarray) -> None:
        """Write whole sectors at off (BlockDevice.write's path for them)."""
        if 0 < data.nbytes and off + data.nbytes <= self.size:
            self.bdev.write_sectors(off // self.sector, data)
        else:
            self.bdev.write(off, data)
