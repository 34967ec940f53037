"""Lines, striping and capacity: where pblk puts each write unit, and how big the volume is."""
import numpy as np
import pytest

from oxemu import Faults, Geometry
from oxhost.lightnvm import Addr, Geo, Ppaf, dev2gen
from oxhost.pblk import PblkError
from oxhost.pblk.lines import LineGeometry, LineState

from .conftest import SECTOR, stamp


def test_capacity_rule_default_geometry_luns_0_to_31(make_pblk):
    p = make_pblk(geometry=Geometry(), ram_mib=256)
    assert p.size == 3_435_134_976               # floor(1024 * 80 / 100) * 1024 * 4096
    assert p.size == 819 * 1024 * 4096


def test_capacity_rule_lun_range_0_to_3(make_pblk):
    p = make_pblk(geometry=Geometry(), lun_begin=0, lun_end=3, ram_mib=256)
    assert p.size == (4 * 32 * 80 // 100) * 1024 * 4096        # 102 chunks
    assert p.lg.luns == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_capacity_rule_small_geometry(pblk):
    assert pblk.size == (4 * 16 * 80 // 100) * 128 * SECTOR    # 51 chunks of 128 sectors


def test_lun_range_outside_the_device_is_refused(make_pblk):
    with pytest.raises(PblkError):
        make_pblk(lun_begin=2, lun_end=4)
    with pytest.raises(PblkError):
        make_pblk(lun_begin=3, lun_end=2)


def test_luns_are_striped_across_channels_first():
    lg = LineGeometry(_geo(8, 4), 0, 31)
    assert lg.luns[:9] == [(ch, 0) for ch in range(8)] + [(0, 1)]
    lg = LineGeometry(_geo(2, 4), 1, 6)            # ch0: luns 1-3, ch1: luns 0-2
    assert lg.luns == [(0, 1), (1, 0), (0, 2), (1, 1), (0, 3), (1, 2)]


def _geo(nch, nlun):
    """A liblightnvm-style Geo for LineGeometry, as the device reports it."""
    g = Geometry(nchannels=nch, nluns=nlun)
    f = g.ppaf
    return Geo(nchannels=nch, nluns=nlun, nplanes=2, nblocks=g.nblocks, npages=g.npages, nsectors=4,
               sector_nbytes=4096, page_nbytes=16384, meta_nbytes=16,
               ppaf=Ppaf(f["ch"][0], f["ch"][1], f["lun"][0], f["lun"][1], f["pl"][0], f["pl"][1],
                         f["blk"][0], f["blk"][1], f["pg"][0], f["pg"][1], f["sec"][0], f["sec"][1]),
               mpos=0x020202, timings_ns={})


def test_line_layout_puts_smeta_first_and_emeta_last_and_skips_bad_blocks(pblk):
    lg = pblk.lg
    sm, data, em = lg.layout(np.array([True, True, True, True]))
    assert sm.tolist() == [0] and em.tolist() == [lg.units_per_line - 1]
    assert data.tolist() == list(range(1, lg.units_per_line - 1))
    sm, data, em = lg.layout(np.array([False, True, True, True]))     # LUN index 0 bad
    assert sm.tolist() == [1]
    assert all(u % 4 != 0 for u in data.tolist())
    assert em.tolist() == [lg.units_per_line - 1]
    assert lg.layout(np.zeros(4, bool)) is None


def test_write_units_stripe_across_luns_one_page_on_both_planes_each(pblk):
    """Line 0: unit 0 is smeta on the first LUN; data units follow LUN by LUN, page by page,
    8 sectors each in the order pl0 sec0-3, pl1 sec0-3."""
    dev, lg = pblk.dev, pblk.lg
    pblk.write_sectors(0, stamp(0, 48))            # 6 write units
    pblk.flush()
    addrs = pblk.l2p.map[:48]
    assert (addrs >= 0).all()
    gens = [dev2gen(int(p), dev.geo) for p in lg.addr_ppas(addrs)]
    expect_units = [(1, 0), (0, 1), (1, 1), (0, 0), (1, 0), (0, 1)]     # (ch, lun) of units 1..6
    expect_pages = [0, 0, 0, 1, 1, 1]
    for u in range(6):
        unit = gens[u * 8:(u + 1) * 8]
        assert {(a.ch, a.lun, a.blk, a.pg) for a in unit} == {(*expect_units[u], 0, expect_pages[u])}
        assert [(a.pl, a.sec) for a in unit] == [(pl, s) for pl in range(2) for s in range(4)]
    # the media holds the data there, with the LBA in each sector's OOB
    ch, lun = expect_units[0]
    data, meta = dev.addr_read([Addr(ch, lun, pl, 0, 0, s) for pl in range(2) for s in range(4)],
                               with_meta=True)
    assert (data == stamp(0, 8)).all()
    assert meta.view("<u8")[1::2].tolist() == list(range(8))


def test_factory_bad_blocks_are_left_out_of_their_line(make_pblk):
    p = make_pblk(faults=Faults(factory_bad={(1, 0, 0, 1)}))     # line 0 on (ch1, lun0), plane 1
    assert p.lm.lines[0].good.tolist() == [True, False, True, True]
    assert p.stats()["bad_blocks"] == {"factory": 1, "grown": 0}
    p.write_sectors(0, stamp(0, 64))
    p.flush()
    gens = {(a.ch, a.lun) for a in (dev2gen(int(x), p.dev.geo) for x in p.lg.addr_ppas(p.l2p.map[:64]))}
    assert (1, 0) not in gens
    assert (p.read_sectors(0, 64) == stamp(0, 64)).all()


def test_retire_blocks_shrinks_the_line_then_rechecks_the_spare_once(pblk):
    """The one retire path (erase, smeta and release failures all take it): the blocks are
    grown bad on the device, the line loses them, and the read-only check runs once, with
    the line already at its new size -- or gone when too few blocks remain."""
    lm = pblk.lm
    seen = []
    lm.on_bad = lambda: seen.append(lm.usable_secs())
    line = lm.lines[5]
    full = lm.usable_secs()
    per_block = pblk.lg.npages * pblk.lg.unit_secs                      # 16 units of 8 sectors
    assert lm.retire_blocks(line, [2])
    assert seen == [full - per_block] and line.nblocks == 3 and not line.good[2]
    assert pblk.dev.bbt_get(Addr(0, 1)).state(5) == 2                  # LUN index 2 is ch 0 lun 1
    assert not lm.retire_blocks(line, [0, 1, 3])
    assert line.state == LineState.BAD and seen[-1] == full - lm.reserve_secs   # a whole line less
    assert len(seen) == 2 and pblk.stats()["bad_blocks"]["grown"] == 4
