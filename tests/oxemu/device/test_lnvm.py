"""LNVM FTL: NAND rules and address validation, with their exact open-channel statuses.

Commands the library would refuse to build are crafted raw and sent with submit_raw.
"""
import numpy as np
import pytest

from oxemu import Faults, Geometry
from oxemu.wire import NvmOpc, PMode
from oxhost.lightnvm import Addr, BlockState, Device, NvmError, buf_diff, gen2dev

from tests.helpers import (INVALID_FIELD, SECTOR, block_planes, guest_addr, page_addrs, ph_sqe, ppas_of,
                           prp_pair, raw_io, stamp_sectors)


def _erase(dev, ch=0, lun=0, blk=1):
    dev.addr_erase(block_planes(ch, lun, blk, dev.geo.nplanes))


def _write_page(dev, ch=0, lun=0, blk=1, pg=0, seed=0):
    p = page_addrs(ch, lun, blk, pg, dev.geo.nplanes)
    data = stamp_sectors(p, seed)
    dev.addr_write(p, data)
    return p, data


# ---------------------------------------------------------------- program rules
def test_lnvm_write_to_an_already_written_page_fails_with_0x40FF(dev):
    _erase(dev)
    p, data = _write_page(dev)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(p, stamp_sectors(p, 99))
    assert ei.value.status == 0x40FF
    assert ei.value.failed == 0xFF
    assert buf_diff(dev.addr_read(p)[0], data) == 0        # the first program stands


def test_lnvm_write_out_of_page_order_fails_with_0x40FF(dev):
    _erase(dev)
    p1 = page_addrs(0, 0, 1, 1, 2)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(p1, stamp_sectors(p1))
    assert ei.value.status == 0x40FF and ei.value.failed == 0xFF
    _write_page(dev, pg=0)                                  # page 0 is still the next page
    _write_page(dev, pg=1)


def test_lnvm_write_after_reerase_succeeds(dev):
    _erase(dev)
    p, _ = _write_page(dev)
    _erase(dev)
    _, data = _write_page(dev, seed=5)
    assert buf_diff(dev.addr_read(p)[0], data) == 0


def test_lnvm_write_failure_bitmap_names_only_the_refused_page(dev):
    """One command, two blocks: the page of the block that was already written fails."""
    _erase(dev, blk=1)
    _erase(dev, blk=2)
    _write_page(dev, blk=2)
    a = page_addrs(0, 0, 1, 0, 2) + page_addrs(0, 0, 2, 0, 2)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(a, stamp_sectors(a))
    assert ei.value.status == 0x40FF
    assert ei.value.failed == 0xFF00
    dev.addr_read(a[:8])                                   # the good half was programmed


def test_lnvm_refused_page_does_not_stop_the_next_page_of_its_block(dev):
    """Pages of one command are programmed in order, as if issued one by one: a rewrite of
    page 0 fails, page 1 right after it in the same command is the next page and succeeds."""
    _erase(dev)
    _write_page(dev, pg=0)
    a = page_addrs(0, 0, 1, 0, 2) + page_addrs(0, 0, 1, 1, 2)
    data = stamp_sectors(a, 6)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(a, data)
    assert ei.value.status == 0x40FF and ei.value.failed == 0x00FF
    assert buf_diff(dev.addr_read(a[8:])[0], data[8 * SECTOR:]) == 0


def test_lnvm_pages_of_one_command_out_of_order_fail_only_where_out_of_order(dev):
    _erase(dev)
    a = page_addrs(0, 0, 1, 1, 2) + page_addrs(0, 0, 1, 0, 2)      # page 1 before page 0
    data = stamp_sectors(a, 7)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(a, data)
    assert ei.value.failed == 0x00FF
    assert buf_diff(dev.addr_read(a[8:])[0], data[8 * SECTOR:]) == 0
    _write_page(dev, pg=1)                                          # now page 1 is next


def test_lnvm_many_pages_of_one_block_in_one_command(dev):
    _erase(dev)
    a = [x for pg in range(8) for x in page_addrs(0, 0, 1, pg, 2)]  # 64 addresses, 8 pages
    data = stamp_sectors(a, 8)
    dev.addr_write(a, data)
    assert buf_diff(dev.addr_read(a)[0], data) == 0
    with pytest.raises(NvmError) as ei:                             # page 8 is next, not 9
        dev.addr_write(page_addrs(0, 0, 1, 9, 2), data[:8 * SECTOR])
    assert ei.value.status == 0x40FF


def test_lnvm_dual_plane_write_not_covering_both_planes_is_rejected_with_0x0002(dev):
    _erase(dev)
    half = [Addr(0, 0, pl=0, blk=1, pg=0, sec=s) for s in range(4)]
    with pytest.raises(NvmError) as ei:
        dev.addr_write(half, stamp_sectors(half), pmode=PMode.DUAL)
    assert ei.value.status == INVALID_FIELD
    mixed = page_addrs(0, 0, 1, 0, 1) + [Addr(0, 0, pl=1, blk=1, pg=1, sec=s) for s in range(4)]
    with pytest.raises(NvmError) as ei:                   # plane 1 of another page
        dev.addr_write(mixed, stamp_sectors(mixed), pmode=PMode.DUAL)
    assert ei.value.status == INVALID_FIELD
    _write_page(dev)                                        # rejected commands touched nothing


def test_lnvm_dual_plane_erase_of_one_plane_is_rejected_with_0x0002(dev):
    with pytest.raises(NvmError) as ei:
        dev.addr_erase([Addr(0, 0, pl=0, blk=1)], pmode=PMode.DUAL)
    assert ei.value.status == INVALID_FIELD


@pytest.mark.parametrize("secs", [[0, 1, 2], [1, 0, 2, 3], [0, 1, 2, 3, 3]],
                         ids=["partial", "out-of-order", "repeated"])
def test_lnvm_write_must_cover_a_page_sector_by_sector(dev, secs):
    _erase(dev)
    a = [Addr(0, 0, pl=0, blk=1, pg=0, sec=s) for s in secs]
    with pytest.raises(NvmError) as ei:
        dev.addr_write(a, stamp_sectors(a), pmode=PMode.SNGL)
    assert ei.value.status == INVALID_FIELD


def test_lnvm_write_to_a_bad_block_fails_with_0x40FF(dev):
    _erase(dev)
    dev.bbt_mark([Addr(0, 0, pl=1, blk=1)], BlockState.GRWN_BAD)
    p = page_addrs(0, 0, 1, 0, 2)
    with pytest.raises(NvmError) as ei:
        dev.addr_write(p, stamp_sectors(p))
    assert ei.value.status == 0x40FF and ei.value.failed == 0xF0


# ---------------------------------------------------------------- read rules
def test_lnvm_read_of_erased_page_fails_with_0x42FF_zeros_and_exact_bitmap(dev):
    _erase(dev)
    p0, data = _write_page(dev)
    p1 = page_addrs(0, 0, 1, 1, 2)
    # interleave written and empty sectors: bit i must be set exactly for the empty ones
    addrs = [p0[0], p1[0], p0[5], p1[7], p1[3], p0[7]]
    empty = [a in p1 for a in addrs]
    with pytest.raises(NvmError) as ei:
        dev.addr_read(addrs, pmode=PMode.SNGL, with_meta=True)
    e = ei.value
    assert e.status == 0x42FF
    assert e.failed == sum(1 << i for i, emp in enumerate(empty) if emp)
    for i, (a, emp) in enumerate(zip(addrs, empty)):
        got = e.data[i * SECTOR:(i + 1) * SECTOR]
        if emp:
            assert not got.any()
        else:
            j = p0.index(a)
            assert np.array_equal(got, data[j * SECTOR:(j + 1) * SECTOR])
    assert not e.meta.any()


def test_lnvm_read_of_never_written_block_fails_for_every_address(dev):
    a = [Addr(1, 1, pl=pl, blk=7, pg=pg, sec=s) for pg in range(9) for pl in range(2) for s in range(4)]
    with pytest.raises(NvmError) as ei:
        dev.addr_read(a)
    assert ei.value.status == 0x42FF
    assert ei.value.failed == (1 << len(a)) - 1            # 72 addresses: two commands
    assert not ei.value.data.any()


def test_lnvm_failed_bitmap_spans_commands_of_a_long_read(dev):
    _erase(dev)
    for pg in range(8):
        _write_page(dev, pg=pg, seed=pg)
    a = [x for pg in range(10) for x in page_addrs(0, 0, 1, pg, 2)]   # 80 addresses
    with pytest.raises(NvmError) as ei:
        dev.addr_read(a)
    assert ei.value.failed == ((1 << 80) - 1) & ~((1 << 64) - 1)


# ---------------------------------------------------------------- erase rules
def test_lnvm_erase_of_a_factory_bad_block_fails_with_0x40FF(make_machine):
    dev = Device.open(make_machine(faults=Faults(factory_bad={(1, 0, 3, 0)})))
    with pytest.raises(NvmError) as ei:
        dev.addr_erase(block_planes(1, 0, 3, 2))
    assert ei.value.status == 0x40FF and ei.value.failed == 0b01


# ---------------------------------------------------------------- address validation
def test_lnvm_ppa_with_bits_beyond_the_format_is_rejected_with_0x4002(dev):
    bad = 1 << dev.geo.ppaf.ch_off + dev.geo.ppaf.ch_len
    for op in (NvmOpc.PH_ERASE, NvmOpc.PH_READ):
        buf = dev.driver.pool.alloc(SECTOR)
        c = raw_io(dev, op, [bad], prp1=buf.addr)
        assert c.status == INVALID_FIELD
        buf.free()


@pytest.mark.parametrize("field", ["ch", "lun", "blk", "pg"])
def test_lnvm_address_outside_a_non_power_of_two_geometry_is_rejected_with_0x4002(open_dev, field):
    geo = Geometry.small(nchannels=3, nluns=3, nblocks=6, npages=12)
    dev = open_dev(geometry=geo)
    limit = dict(ch=3, lun=3, blk=6, pg=12)[field]
    ok = Addr(0, 0, blk=1)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    bad = ok.replace(**{field: limit})
    buf = dev.driver.pool.alloc(SECTOR * 8)
    for op in (NvmOpc.PH_ERASE, NvmOpc.PH_READ):
        c = raw_io(dev, op, [gen2dev(bad, dev.geo)], prp1=buf.addr, control=PMode.SNGL)
        assert c.status == INVALID_FIELD, op
    page = page_addrs(0, 0, 1, 0, 2)
    ppas = ppas_of(dev, page)
    ppas[5] = gen2dev(bad.replace(pl=1, sec=1), dev.geo)    # one bad address in a list
    buf.array[:] = 7
    prp1, prp2 = prp_pair(dev, buf.addr, 8 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_WRITE, ppas, prp1=prp1, prp2=prp2, control=PMode.DUAL)
    assert c.status == INVALID_FIELD
    assert c.result == 0
    dev.addr_write(page, stamp_sectors(page))             # nothing was programmed


def test_lnvm_more_than_64_addresses_are_rejected_with_0x4002(dev):
    drv = dev.driver
    lst = drv.pool.alloc(8 * 65)
    lst.array.view("<u8")[:] = gen2dev(Addr(0, 0, blk=1), dev.geo)
    for op, nlb in [(NvmOpc.PH_ERASE, 64), (NvmOpc.PH_READ, 64), (NvmOpc.PH_READ, 0xFFFF)]:
        c = drv.submit_raw(1, ph_sqe(op, lst.addr, nlb))
        assert c.status == INVALID_FIELD, (op, nlb)


def test_lnvm_64_addresses_is_the_largest_command(dev):
    for blk in (1, 2, 3, 4):
        _erase(dev, blk=blk)
    a = [x for blk in (1, 2, 3, 4) for pg in range(2) for x in page_addrs(0, 0, blk, pg, 2)]
    assert len(a) == 64
    data = stamp_sectors(a)
    buf = dev.buf_alloc(len(a) * SECTOR)
    buf[:] = data
    prp1, prp2 = prp_pair(dev, guest_addr(dev, buf), buf.nbytes)
    c = raw_io(dev, NvmOpc.PH_WRITE, ppas_of(dev, a), prp1=prp1, prp2=prp2, control=PMode.DUAL)
    assert c.status == 0
    assert buf_diff(dev.addr_read(a)[0], data) == 0


@pytest.mark.parametrize("control", [0x3, 0x83], ids=["pmode-3", "suspend+pmode-3"])
def test_lnvm_undefined_plane_mode_is_rejected_with_0x4002(dev, control):
    c = raw_io(dev, NvmOpc.PH_ERASE, ppas_of(dev, block_planes(0, 0, 1, 2)), control=control)
    assert c.status == INVALID_FIELD


def test_lnvm_unknown_namespace_is_rejected_with_0x400B(dev):
    c = raw_io(dev, NvmOpc.PH_ERASE, ppas_of(dev, block_planes(0, 0, 1, 2)), nsid=2)
    assert c.status == 0x400B


@pytest.mark.parametrize("opcode", [0x01, 0x02, 0x7F, 0x93, 0xFF])
def test_lnvm_io_opcode_outside_the_open_channel_set_fails_with_0x4001(dev, opcode):
    c = dev.driver.submit_raw(1, ph_sqe(opcode, 0))
    assert c.status == 0x4001
    _erase(dev)                                            # the queue still works


def test_lnvm_slc_and_scramble_control_bits_do_not_change_the_data(dev):
    _erase(dev)
    p = page_addrs(0, 0, 1, 0, 2)
    data = stamp_sectors(p)
    buf = dev.buf_alloc(len(p) * SECTOR)
    buf[:] = data
    prp1, prp2 = prp_pair(dev, guest_addr(dev, buf), buf.nbytes)
    c = raw_io(dev, NvmOpc.PH_WRITE, ppas_of(dev, p), prp1=prp1, prp2=prp2,
               control=PMode.DUAL | 0x100 | 0x200)
    assert c.status == 0
    assert buf_diff(dev.addr_read(p)[0], data) == 0
