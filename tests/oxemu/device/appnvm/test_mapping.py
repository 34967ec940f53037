"""AppNVM page-level mapping: placement of write units over the LUNs, L2P/P2L
consistency and valid counts, and the buffer rule kept by Mapping's operations."""
import numpy as np
import pytest

from oxemu import Geometry
from oxemu.device.appnvm.mapping import CACHE_BASE, NO_LBA, UNMAPPED, Addr, Mapping

from .conftest import GEO, check_map, stamp, versions


def _lun_of(ops, lba):
    loc = int(ops.map.l2p[lba])
    ch, lun, *_ = ops.addr.decode(loc)
    return ch * GEO.nluns + lun


def test_units_are_striped_over_every_lun_channel_first(nvme):
    us = nvme.ops.addr.unit_secs
    assert us == 8                                         # one dual-plane page: 2 x 4 sectors
    n = us * GEO.total_luns * 2
    assert nvme.write(0, stamp(np.arange(n), 1)) == 0
    luns = [_lun_of(nvme.ops, u * us) for u in range(n // us)]
    chans = [lun // GEO.nluns for lun in luns]
    assert sorted(set(luns)) == list(range(GEO.total_luns))
    assert chans[:2] == [0, 1]                             # consecutive units on different channels
    assert luns[:GEO.total_luns] == luns[GEO.total_luns:]  # a steady round robin
    for u in range(n // us):                               # a unit's sectors stay together
        locs = nvme.ops.map.l2p[u * us:(u + 1) * us].astype(np.int64)
        assert (np.diff(locs) == 1).all() and locs[0] % us == 0
    check_map(nvme.ops)


def test_partial_units_wait_in_the_buffer_and_flush_pads_them(nvme):
    assert nvme.write(0, stamp(np.arange(5), 1)) == 0
    l2p = nvme.ops.map.l2p
    assert ((l2p[:5] >= CACHE_BASE) & (l2p[:5] < UNMAPPED)).all()
    check_map(nvme.ops)
    assert nvme.flush() == 0
    assert (l2p[:5] < CACHE_BASE).all()
    st = nvme.ops.stats()
    assert st["user_sectors"] == 5 and st["pad_sectors"] == 3
    check_map(nvme.ops)


def test_overwrites_invalidate_the_old_copy(nvme):
    nvme.write_stamped(np.arange(16), 1)
    old = nvme.ops.map.l2p[:16].copy()
    nvme.write_stamped(np.arange(8), 2)
    assert nvme.flush() == 0
    m = nvme.ops.map
    assert (m.p2l[old[:8]] == 0xFFFF_FFFF).all()           # dropped
    assert (m.p2l[old[8:]] == np.arange(8, 16)).all()      # still current
    assert m.valid.sum() == 16
    check_map(nvme.ops)
    assert nvme.read_versions(0, 16).tolist() == [2] * 8 + [1] * 8


def test_overwrite_of_a_buffered_sector_keeps_the_durable_copy_valid(nvme):
    nvme.write_stamped(np.arange(8), 1)                    # a whole unit: on media
    loc = int(nvme.ops.map.l2p[3])
    nvme.write_stamped([3], 2)                             # the new copy is only buffered
    assert nvme.ops.map.p2l[loc] == 3                      # the old one still counts
    check_map(nvme.ops)
    assert nvme.flush() == 0
    assert nvme.ops.map.p2l[loc] == 0xFFFF_FFFF
    check_map(nvme.ops)


def test_large_writes_match_a_reference_model(nvme):
    rng = np.random.default_rng(3)
    ref = np.zeros(nvme.nlbas, dtype=np.int64)
    for i in range(1, 120):
        n = int(rng.choice([1, 3, 8, 13, 64, 256]))
        slba = int(rng.integers(0, nvme.nlbas - n))
        assert nvme.write(slba, stamp(np.arange(slba, slba + n), i)) == 0
        ref[slba:slba + n] = i
        if i % 40 == 0:
            check_map(nvme.ops)
    assert (nvme.read_versions() == ref).all()
    check_map(nvme.ops)


def test_read_of_a_scattered_range_mixes_media_buffer_and_holes(nvme):
    nvme.write_stamped(np.arange(0, 32, 2), 1)             # every other sector, two units
    assert nvme.write(33, stamp([33], 2)) == 0             # buffered
    st, data = nvme.read(0, 40)
    want = [1 if i % 2 == 0 and i < 32 else 0 for i in range(40)]
    want[33] = 2
    assert st == 0 and versions(data, np.arange(40)).tolist() == want


# ---------------------------------------------------------------- the buffer rule, one operation at a time

def _mapping():
    """A Mapping of 16 LBAs over 1x1x4x4 (units of 8 sectors, blocks of 32)."""
    addr = Addr(Geometry(nchannels=1, nluns=1, nblocks=4, npages=4))
    return Mapping(16, addr)


def _unit(m, lbas, block=0, page=0):
    """Whole unit written straight from the host at (block, page); returns its locations."""
    locs = m.addr.unit_loc(block, page) + np.arange(8)
    m.write_units(np.asarray(lbas, dtype=np.int64), locs)
    return locs


def test_mapping_buffer_keeps_the_durable_copy_valid_until_the_buffer_is_programmed():
    m = _mapping()
    on_media = _unit(m, np.arange(8))
    m.buffer(np.array([3, 4]), np.array([0, 1], dtype=np.uint32))
    assert m.l2p[3] == CACHE_BASE and m.l2p[4] == CACHE_BASE + 1
    assert m.p2l[on_media[3]] == 3 and m.valid[0] == 8             # still valid: a cut keeps it
    assert m.durable_l2p()[[3, 4]].tolist() == on_media[[3, 4]].tolist()
    m.buffer(np.array([3]), np.array([2], dtype=np.uint32))         # rewritten while buffered
    assert m.slot_lba[:3].tolist() == [-1, 4, 3] and m.slot_prev[2] == on_media[3]
    new = m.addr.unit_loc(1, 0) + np.arange(8)
    m.buffer_programmed(new)
    assert m.l2p[3] == new[2] and m.l2p[4] == new[1]
    assert m.p2l[on_media[3]] == NO_LBA and m.p2l[on_media[4]] == NO_LBA
    assert m.valid[:2].tolist() == [6, 2]
    assert (m.slot_lba == -1).all() and (m.slot_prev == UNMAPPED).all()


def test_mapping_deallocate_of_a_buffered_lba_drops_its_slot_and_its_durable_copy():
    m = _mapping()
    on_media = _unit(m, np.arange(8))
    m.buffer(np.array([5, 9]), np.array([0, 1], dtype=np.uint32))
    m.deallocate(4, 6)                                              # LBAs 4..9
    assert (m.l2p[4:10] == UNMAPPED).all() and m.slot_lba[:2].tolist() == [-1, -1]
    assert m.valid[0] == 4 and (m.p2l[on_media[4:]] == NO_LBA).all()
    m.buffer_programmed(m.addr.unit_loc(1, 0) + np.arange(8))      # the unit is all padding now
    assert m.valid.sum() == 4 and m.mapped_count() == 4


def test_mapping_relocate_follows_a_buffered_lbas_durable_copy():
    m = _mapping()
    on_media = _unit(m, np.arange(8))
    m.buffer(np.array([6]), np.array([0], dtype=np.uint32))
    moved = m.addr.unit_loc(2, 0) + np.array([0, 1])
    m.relocate(np.array([6, 7]), on_media[[6, 7]].astype(np.int64), moved.astype(np.int64))
    assert m.l2p[7] == moved[1] and m.l2p[6] == CACHE_BASE         # the buffered copy stays newest
    assert m.slot_prev[0] == moved[0] and m.p2l[moved[0]] == 6
    assert m.durable_l2p()[6] == moved[0] and m.valid[[0, 2]].tolist() == [6, 2]
    m.buffer_programmed(m.addr.unit_loc(1, 0) + np.arange(8))
    assert m.p2l[moved[0]] == NO_LBA and m.valid[[0, 1, 2]].tolist() == [6, 1, 1]


def test_mapping_write_units_supersede_a_buffered_sector():
    m = _mapping()
    on_media = _unit(m, np.arange(8))
    m.buffer(np.array([2]), np.array([0], dtype=np.uint32))
    again = _unit(m, np.arange(8), block=1)
    assert (m.l2p[:8] == again).all() and m.slot_lba[0] == -1
    assert (m.p2l[on_media] == NO_LBA).all() and m.valid[:2].tolist() == [0, 8]


def test_mapping_tables_are_read_only_views():
    m = _mapping()
    for view in (m.l2p, m.p2l, m.valid, m.slot_lba, m.slot_prev):
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 1
    assert m.buffered_lbas().flags.writeable
