"""AppNVM page-level mapping: placement of write units over the LUNs, L2P/P2L
consistency and valid counts."""
import numpy as np

from oxemu.device.appnvm.mapping import CACHE_BASE, UNMAPPED

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
