"""The write buffer ring: wraparound, counts by kind, reads served from it."""
import numpy as np

from oxhost.pblk.metadata import Kind
from oxhost.pblk.writebuffer import WriteBuffer

from .conftest import SECTOR, stamp


def ring(n=16):
    return WriteBuffer(np.zeros(n * SECTOR, np.uint8), n, SECTOR)


def test_writebuffer_user_entries_wrap_around_the_ring():
    rb = ring(16)
    rb.put_user(0, stamp(0, 12), 12)
    start = rb.tail(8)
    rb.release(8)
    assert start == 0 and rb.count == 4 and rb.space == 12
    pos = rb.put_user(100, stamp(100, 10), 10)       # slots 12..15 then 0..5
    assert pos == 12
    slots = rb.slots(pos, 10)
    assert slots.tolist() == [12, 13, 14, 15, 0, 1, 2, 3, 4, 5]
    assert (rb.data[slots].reshape(-1) == stamp(100, 10)).all()
    assert rb.lba[slots].tolist() == list(range(100, 110))
    assert rb.count == 14 and rb.nuser == 14


def test_writebuffer_counts_user_and_gc_entries_until_released():
    rb = ring(16)
    rb.put_user(0, stamp(0, 3), 3)
    rb.put(np.array([50, 51]), Kind.GC, stamp(50, 2).reshape(2, SECTOR))
    rb.pad(3)
    assert (rb.nuser, rb.ngc, rb.count) == (3, 2, 8)
    assert rb.kind[:8].tolist() == [Kind.USER] * 3 + [Kind.GC] * 2 + [Kind.PAD] * 3
    assert not rb.data[5:8].any() and (rb.lba[5:8] == -1).all()
    rb.release(8)
    assert (rb.nuser, rb.ngc, rb.count) == (0, 0, 0)


def test_writebuffer_reserve_commit_fills_in_place():
    rb = ring(16)
    rb.put_user(0, stamp(0, 14), 14)
    rb.release(8)
    assert rb.contiguous_space() == 2               # up to the ring end
    start = rb.reserve(2)
    rb.data[start:start + 2] = stamp(9, 2).reshape(2, SECTOR)
    rb.commit(np.array([9, 10]), Kind.GC)
    assert rb.mem == 16 and rb.ngc == 2


def test_pblk_reads_of_buffered_lbas_are_served_from_the_buffer(pblk):
    cmds = pblk.dev.driver.stats["commands"]
    pblk.write_sectors(10, stamp(10, 3))             # less than a write unit: stays buffered
    assert (pblk.read_sectors(10, 3) == stamp(10, 3)).all()
    assert (pblk.read_sectors(11, 1) == stamp(11)).all()
    assert pblk.dev.driver.stats["commands"] == cmds
    assert pblk.stats()["write_buffer"]["buffered"] == 3


def test_pblk_data_survives_many_trips_around_the_buffer(pblk):
    lba, sizes = 0, [1, 7, 13, 64, 3, 255, 33, 1000, 9]
    for i in range(12):
        for n in sizes:
            pblk.write_sectors(lba % 5000, stamp(lba % 5000, n, tag=i))
            lba += n
    assert pblk.rb.mem > 3 * pblk.rb.n
    total = sum(sizes) * 12
    shadow = np.zeros((5000 + 1100, SECTOR), np.uint8)
    lba = 0
    for i in range(12):
        for n in sizes:
            s = lba % 5000
            shadow[s:s + n] = stamp(s, n, tag=i).reshape(n, SECTOR)
            lba += n
    assert lba == total
    got = pblk.read_sectors(0, 5000 + 1000).reshape(-1, SECTOR)
    assert (got == shadow[:6000]).all()
