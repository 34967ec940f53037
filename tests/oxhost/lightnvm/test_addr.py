"""liblightnvm test_addr_conv: generic <-> device <-> offset <-> LBA, and addr_check."""
import itertools

import pytest

from oxhost.lightnvm import (Addr, AddrCheck, addr_check, dev2gen, fmt, gen2dev, gen2lba, gen2off,
                             lba2gen, off2gen)


def _lun_sectors(geo, ch, lun):
    for blk, pg, pl, sec in itertools.product(range(geo.nblocks), range(geo.npages),
                                              range(geo.nplanes), range(geo.nsectors)):
        yield Addr(ch, lun, pl=pl, blk=blk, pg=pg, sec=sec)


@pytest.mark.parametrize("ch,lun", [(0, 0), (7, 3)])
def test_addr_conversions_round_trip_over_every_sector_of_a_lun(default_dev, ch, lun):
    geo = default_dev.geo
    ppas, lbas = set(), []
    for a in _lun_sectors(geo, ch, lun):
        ppa = gen2dev(a, geo)
        assert dev2gen(ppa, geo) == a
        lba = gen2lba(a, geo)
        assert lba2gen(lba, geo) == a
        off = gen2off(a, geo)
        assert off == lba * geo.sector_nbytes
        assert off2gen(off, geo) == a
        assert Addr.from_val(a.val) == a
        ppas.add(ppa)
        lbas.append(lba)
    per_lun = geo.nblocks * geo.npages * geo.nplanes * geo.nsectors
    assert len(ppas) == per_lun                       # no two sectors share a device address
    first = (ch * geo.nluns + lun) * per_lun
    assert sorted(lbas) == list(range(first, first + per_lun))   # a LUN is one LBA range


def test_addr_gen2dev_puts_each_field_at_its_ppaf_bits(default_dev):
    a = Addr(ch=5, lun=2, pl=1, blk=17, pg=99, sec=3)
    assert gen2dev(a, default_dev.geo) == 3 | (1 << 2) | (99 << 3) | (17 << 10) | (2 << 15) | (5 << 17)


def test_addr_lba_order_keeps_a_blocks_planes_contiguous(default_dev):
    geo = default_dev.geo
    a = Addr(1, 2, pl=0, blk=3, pg=4, sec=0)
    lba = gen2lba(a, geo)
    assert lba2gen(lba + geo.nsectors, geo) == a.replace(pl=1)
    assert lba2gen(lba + geo.nsectors * geo.nplanes, geo) == a.replace(pg=5)


def test_addr_generic_value_packs_liblightnvm_fields():
    a = Addr(ch=3, lun=2, pl=1, blk=0x1234, pg=0x56, sec=3)
    assert a.val == 0x1234 | (0x56 << 16) | (3 << 32) | (1 << 40) | (2 << 48) | (3 << 56)
    assert Addr.from_val(a.val) == a


def test_addr_check_accepts_every_corner_of_the_geometry(dev):
    g = dev.geo
    corner = Addr(g.nchannels - 1, g.nluns - 1, pl=g.nplanes - 1, blk=g.nblocks - 1,
                  pg=g.npages - 1, sec=g.nsectors - 1)
    assert addr_check([Addr(), corner], g) == 0


@pytest.mark.parametrize("field,bit", [("ch", AddrCheck.CH), ("lun", AddrCheck.LUN), ("pl", AddrCheck.PL),
                                       ("blk", AddrCheck.BLK), ("pg", AddrCheck.PG), ("sec", AddrCheck.SEC)])
def test_addr_check_flags_exactly_the_field_outside_the_geometry(dev, field, bit):
    limit = dict(ch=dev.geo.nchannels, lun=dev.geo.nluns, pl=dev.geo.nplanes, blk=dev.geo.nblocks,
                 pg=dev.geo.npages, sec=dev.geo.nsectors)[field]
    assert addr_check(Addr().replace(**{field: limit}), dev.geo) == bit
    assert addr_check(Addr().replace(**{field: -1}), dev.geo) == bit


def test_addr_check_ors_the_flags_of_every_address(dev):
    g = dev.geo
    bad = [Addr(ch=g.nchannels), Addr(sec=g.nsectors), Addr()]
    assert addr_check(bad, g) == AddrCheck.CH | AddrCheck.SEC


def test_addr_check_bitmask_values_are_liblightnvms():
    assert [int(b) for b in (AddrCheck.CH, AddrCheck.LUN, AddrCheck.PL, AddrCheck.BLK,
                             AddrCheck.PG, AddrCheck.SEC)] == [1, 2, 4, 8, 16, 32]


def test_addr_fmt_names_every_field():
    s = fmt(Addr(ch=1, lun=2, pl=1, blk=30, pg=127, sec=3))
    assert "ch(01)" in s and "lun(02)" in s and "pl(1)" in s
    assert "blk(0030)" in s and "pg(127)" in s and "sec(3)" in s
