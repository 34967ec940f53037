"""A full-volume random overwrite, more than twice the capacity written on a small geometry:
GC must reclaim lines as it goes, nothing written may be lost, and the stats file reports
the write amplification it cost."""
import mmap
import os

import numpy as np

from .conftest import SMALL_GEOMETRY, read_stats

BS = 4096


def test_e2e_random_overwrite_twice_capacity_with_gc(ox, mnt, tmp_path):
    disk = tmp_path / "ox.disk"
    ox.mount(mnt, "--disk", disk, "--geometry", SMALL_GEOMETRY)
    vol = str(mnt / "volume")
    nblocks = os.stat(vol).st_size // BS
    rng = np.random.default_rng(2024)
    version = np.zeros(nblocks, dtype=np.uint32)        # what each block must hold now
    buf = mmap.mmap(-1, BS)
    words = np.frombuffer(buf, dtype="<u4")

    def fill(lba: int, ver: int) -> None:
        words[:] = (lba * 2654435761 + ver * 40503) & 0xFFFFFFFF
        words[0], words[1] = lba, ver

    # Fill the volume once in order, then overwrite random blocks until 2.5x is written.
    order = [np.arange(nblocks), rng.integers(0, nblocks, int(nblocks * 1.5))]
    fd = os.open(vol, os.O_RDWR | os.O_DIRECT)
    try:
        for lbas in order:
            for lba in lbas:
                lba = int(lba)
                version[lba] += 1
                fill(lba, int(version[lba]))
                os.pwrite(fd, buf, lba * BS)
        os.fsync(fd)
    finally:
        os.close(fd)
    written = int(version.sum()) * BS
    assert written > 2 * nblocks * BS

    s = read_stats(mnt)
    assert s["fuse"]["errors"] == 0
    assert s["gc_runs"] > 0 and s["gc_sectors"] > 0
    assert s["write_amplification"] > 1.0
    assert s["user_sectors"] >= written // BS

    ox.umount(mnt)                                      # read back from media, not caches
    ox.mount(mnt, "--disk", disk)
    fd = os.open(vol, os.O_RDONLY | os.O_DIRECT)
    try:
        chunk = mmap.mmap(-1, 64 * BS)
        got = np.frombuffer(chunk, dtype="<u4").reshape(64, BS // 4)
        for first in range(0, nblocks, 64):
            n = min(64, nblocks - first)
            assert os.preadv(fd, [chunk], first * BS) == 64 * BS or n < 64
            lbas = np.arange(first, first + n)
            assert (got[:n, 0] == lbas).all(), f"blocks {first}..{first + n}: wrong LBA stamp"
            bad = np.nonzero(got[:n, 1] != version[first:first + n])[0]
            assert not bad.size, f"block {first + bad[0]}: version {got[bad[0], 1]}, " \
                                 f"want {version[first + bad[0]]}"
    finally:
        os.close(fd)
    s2 = read_stats(mnt)
    print(f"\nvolume {nblocks * BS} B, written {written} B, WA {s['write_amplification']}, "
          f"GC runs {s['gc_runs']}, GC sectors {s['gc_sectors']}")
    ox.umount(mnt)
    assert s2["fuse"]["errors"] == 0
