"""liblightnvm test_bbt: get, mark (one, many) and set bad block tables over 0xF2/0xF1."""
import numpy as np
import pytest

from oxemu import Geometry
from oxemu.wire import AdminOpc
from oxhost.lightnvm import Addr, BbTable, BlockState, Device, LightnvmError, NvmError, gen2dev

from tests.helpers import INVALID_FIELD, block_planes


def test_bbt_get_of_a_fresh_lun_is_all_free(dev):
    t = dev.bbt_get(Addr(1, 1))
    g = dev.geo
    assert t.blks.size == g.nblocks * g.nplanes
    assert not t.blks.any()
    assert (t.tfact, t.tgrown, t.tdresv, t.thresv) == (0, 0, 0, 0)


def test_bbt_mark_single_block_plane_shows_in_get(dev):
    dev.bbt_mark([Addr(0, 1, pl=1, blk=3)], BlockState.BAD)
    t = dev.bbt_get(Addr(0, 1))
    assert t.state(3, 1) == BlockState.BAD
    assert t.state(3, 0) == BlockState.FREE
    assert np.count_nonzero(t.blks) == 1
    assert t.tfact == 1 and t.is_bad(3) and not t.is_bad(2)


def test_bbt_mark_many_over_several_commands(open_dev):
    dev = open_dev(geometry=Geometry.small(nblocks=32))
    g = dev.geo
    addrs = [Addr(ch, lun, pl=pl, blk=blk) for ch in range(2) for lun in range(2)
             for blk in range(0, g.nblocks, 2) for pl in range(g.nplanes)]
    assert len(addrs) > 64                    # the library splits into several 0xF1 commands
    dev.bbt_mark(addrs, BlockState.GRWN_BAD)
    for ch in range(2):
        for lun in range(2):
            t = dev.bbt_get(Addr(ch, lun))
            for blk in range(g.nblocks):
                for pl in range(g.nplanes):
                    assert t.state(blk, pl) == (BlockState.GRWN_BAD if blk % 2 == 0 else BlockState.FREE)
            assert t.tgrown == g.nblocks // 2 * g.nplanes and t.tfact == 0


def test_bbt_tables_are_kept_per_lun(dev):
    dev.bbt_mark([Addr(1, 0, blk=4)], BlockState.BAD)
    assert dev.bbt_get(Addr(1, 0)).state(4) == BlockState.BAD
    for ch, lun in [(0, 0), (0, 1), (1, 1)]:
        assert not dev.bbt_get(Addr(ch, lun)).blks.any()


def test_bbt_set_writes_a_whole_table_and_counts_each_state(dev):
    g = dev.geo
    blks = np.zeros(g.nblocks * g.nplanes, np.uint8)
    blks[[0, 1]] = BlockState.BAD
    blks[5] = BlockState.GRWN_BAD
    blks[[6, 9, 10]] = BlockState.DEV
    blks[15] = BlockState.HOST
    dev.bbt_set(BbTable(Addr(1, 1), blks, g.nplanes))
    t = dev.bbt_get(Addr(1, 1))
    assert np.array_equal(t.blks, blks)
    assert (t.tfact, t.tgrown, t.tdresv, t.thresv) == (2, 1, 3, 1)


def test_bbt_mark_free_clears_a_bad_block(dev):
    dev.bbt_mark(block_planes(0, 0, 6, 2), BlockState.BAD)
    dev.bbt_mark(block_planes(0, 0, 6, 2), BlockState.FREE)
    assert not dev.bbt_get(Addr(0, 0)).blks.any()
    dev.addr_erase(block_planes(0, 0, 6, 2))          # usable again


def test_bbt_marked_block_fails_erase_with_0x40FF(dev):
    dev.bbt_mark([Addr(1, 0, pl=0, blk=2)], BlockState.BAD)
    with pytest.raises(NvmError) as ei:
        dev.addr_erase(block_planes(1, 0, 2, 2))
    assert ei.value.status == 0x40FF
    assert ei.value.failed == 0b01                   # only the bad plane failed


def test_bbt_set_of_a_table_of_the_wrong_size_is_refused(dev):
    with pytest.raises(LightnvmError):
        dev.bbt_set(BbTable(Addr(0, 0), np.zeros(3, np.uint8), 2))


def test_bbt_set_with_an_undefined_state_is_rejected_with_0x0002(dev):
    ppa = gen2dev(Addr(0, 0, blk=1), dev.geo)
    c = dev.driver.admin(AdminOpc.NVM_SET_BBT, nsid=1, cdw10=ppa, cdw12=0 | (3 << 16))
    assert c.status == INVALID_FIELD
    assert not dev.bbt_get(Addr(0, 0)).blks.any()


def test_bbt_get_of_a_lun_outside_the_geometry_is_rejected(make_machine):
    d = Device.open(make_machine(geometry=Geometry.small(nluns=3)))
    ppa = gen2dev(Addr(0, 3), d.geo)
    buf = d.driver.pool.alloc(4096)
    c = d.driver.admin(AdminOpc.NVM_GET_BBT, nsid=1, prp1=buf.addr, cdw10=ppa)
    assert c.status == INVALID_FIELD
    assert not buf.array.any()


def test_bbt_of_a_quad_plane_device_has_four_entries_per_block(quad_dev):
    quad_dev.bbt_mark([Addr(1, 0, pl=3, blk=2)], BlockState.BAD)
    t = quad_dev.bbt_get(Addr(1, 0))
    assert t.blks.size == quad_dev.geo.nblocks * 4
    assert np.flatnonzero(t.blks).tolist() == [2 * 4 + 3]
    assert t.is_bad(2) and t.tfact == 1
