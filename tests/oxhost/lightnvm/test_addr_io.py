"""liblightnvm test_addr_io: erase/write/read a block in every plane mode, with and
without OOB metadata, and the plane-mode rules the device enforces."""
import numpy as np
import pytest

from oxemu import Geometry
from oxemu.wire import AdminOpc
from oxhost.lightnvm import (Addr, AddrCheck, AddrError, BlockState, Device, LightnvmError, NvmError, PMode,
                            buf_diff, gen2dev)

from tests.helpers import INVALID_FIELD, block_planes, page_addrs, stamp_meta, stamp_sectors


def _erase_block(dev, ch, lun, blk, pmode):
    planes = block_planes(ch, lun, blk, dev.geo.nplanes)
    if pmode == PMode.SNGL:
        for a in planes:                        # one erase command per plane
            dev.addr_erase([a], pmode=pmode)
    else:
        dev.addr_erase(planes, pmode=pmode)


def _block_in_mode_order(dev, ch, lun, blk, pmode):
    """Every sector of a block, grouped as one command unit per page (per plane in SNGL)."""
    g = dev.geo
    if pmode == PMode.SNGL:
        return [Addr(ch, lun, pl=pl, blk=blk, pg=pg, sec=s)
                for pl in range(g.nplanes) for pg in range(g.npages) for s in range(g.nsectors)]
    return [a for pg in range(g.npages) for a in page_addrs(ch, lun, blk, pg, g.nplanes, g.nsectors)]


def _roundtrip(dev, pmode, with_meta, ch=1, lun=1, blk=2):
    _erase_block(dev, ch, lun, blk, pmode)
    addrs = _block_in_mode_order(dev, ch, lun, blk, pmode)
    data = stamp_sectors(addrs, seed=int(pmode))
    meta = stamp_meta(addrs) if with_meta else None
    dev.addr_write(addrs, data, meta=meta, pmode=pmode)
    got, got_meta = dev.addr_read(addrs, pmode=pmode, with_meta=with_meta)
    assert buf_diff(got, data) == 0
    if with_meta:
        assert buf_diff(got_meta, meta) == 0
    else:
        assert got_meta is None
        # the OOB a write without metadata leaves behind reads back as zeros
        _, oob = dev.addr_read(addrs[:8], pmode=PMode.SNGL, with_meta=True)
        assert not oob.any()
    return addrs, data


@pytest.mark.parametrize("with_meta", [False, True], ids=["data", "data+meta"])
@pytest.mark.parametrize("pmode", [PMode.SNGL, PMode.DUAL], ids=["single", "dual"])
def test_addr_io_block_roundtrip_on_dual_plane_device(dev, pmode, with_meta):
    _roundtrip(dev, pmode, with_meta)


@pytest.mark.parametrize("with_meta", [False, True], ids=["data", "data+meta"])
@pytest.mark.parametrize("pmode", [PMode.SNGL, PMode.QUAD], ids=["single", "quad"])
def test_addr_io_block_roundtrip_on_quad_plane_device(quad_dev, pmode, with_meta):
    _roundtrip(quad_dev, pmode, with_meta)


def test_addr_io_data_written_in_dual_mode_reads_back_per_plane_in_single_mode(dev):
    addrs, data = _roundtrip(dev, PMode.DUAL, False)
    sec = dev.geo.sector_nbytes
    for pl in range(dev.geo.nplanes):
        idx = [i for i, a in enumerate(addrs) if a.pl == pl]
        got, _ = dev.addr_read([addrs[i] for i in idx], pmode=PMode.SNGL)
        want = np.concatenate([data[i * sec:(i + 1) * sec] for i in idx])
        assert buf_diff(got, want) == 0


def test_addr_io_zero_copy_buffers_give_the_same_bytes_as_host_buffers(dev):
    addrs, data = _roundtrip(dev, PMode.DUAL, False)
    out = dev.buf_alloc(len(addrs) * dev.geo.sector_nbytes)
    got, _ = dev.addr_read(addrs, out=out)
    assert got.ctypes.data == out.ctypes.data        # filled in place by the device's DMA
    assert buf_diff(out, data) == 0


def test_addr_io_read_into_an_unaligned_guest_buffer_spans_pages_correctly(dev):
    addrs, data = _roundtrip(dev, PMode.DUAL, False)
    n = 24 * dev.geo.sector_nbytes
    big = dev.buf_alloc(n + 8192)
    out = big[1024:1024 + n]                          # PRP1 with an offset, PRP list after it
    big[:] = 0xEE
    dev.addr_read(addrs[:24], out=out)
    assert buf_diff(out, data[:n]) == 0
    assert (big[:1024] == 0xEE).all() and (big[1024 + n:] == 0xEE).all()


@pytest.mark.parametrize("op", ["erase", "write", "read"])
def test_addr_io_quad_mode_on_dual_plane_device_is_rejected_with_0x0002(dev, op):
    page = page_addrs(0, 0, 1, 0, 2)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    with pytest.raises(NvmError) as ei:
        if op == "erase":
            dev.addr_erase(block_planes(0, 0, 1, 2), pmode=PMode.QUAD)
        elif op == "write":
            dev.addr_write(page, stamp_sectors(page), pmode=PMode.QUAD)
        else:
            dev.addr_read(page, pmode=PMode.QUAD)
    assert ei.value.status == INVALID_FIELD
    assert ei.value.failed == (1 << (len(page) if op != "erase" else 2)) - 1
    # nothing was done: the page is still free to program in dual mode
    dev.addr_write(page, stamp_sectors(page))


def test_addr_io_dual_mode_on_single_plane_device_is_rejected(make_machine):
    d = Device.open(make_machine(geometry=Geometry.small(nplanes=1)))
    with pytest.raises(NvmError) as ei:
        d.addr_erase([Addr(0, 0, blk=1)], pmode=PMode.DUAL)
    assert ei.value.status == INVALID_FIELD


def test_addr_io_write_split_over_several_commands_keeps_order(dev):
    """200 addresses: four commands of <= 64 in one doorbell batch, data lands in order."""
    g = dev.geo
    pages = [page_addrs(ch, lun, 3, pg, g.nplanes) for pg in range(g.npages)
             for ch in range(2) for lun in range(2)][:25]
    for ch in range(2):
        for lun in range(2):
            dev.addr_erase(block_planes(ch, lun, 3, g.nplanes))
    addrs = [a for p in pages for a in p]
    assert len(addrs) == 200
    data, meta = stamp_sectors(addrs, 7), stamp_meta(addrs)
    dev.addr_write(addrs, data, meta=meta)
    got, got_meta = dev.addr_read(addrs, with_meta=True)
    assert buf_diff(got, data) == 0 and buf_diff(got_meta, meta) == 0


def test_addr_io_refuses_short_buffers_and_empty_address_lists(dev):
    page = page_addrs(0, 0, 1, 0, 2)
    with pytest.raises(LightnvmError):
        dev.addr_write(page, np.zeros(7 * 4096, np.uint8))
    with pytest.raises(LightnvmError):
        dev.addr_write(page, np.zeros(8 * 4096, np.uint8), meta=np.zeros(16, np.uint8))
    with pytest.raises(LightnvmError):
        dev.addr_read(page, out=np.zeros(4096, np.uint8))
    with pytest.raises(LightnvmError):
        dev.addr_read([])


def test_addr_io_bbt_mark_outside_the_geometry_is_refused_by_the_library_and_the_device(make_machine):
    d = Device.open(make_machine(geometry=Geometry.small(nblocks=6)))
    with pytest.raises(AddrError) as ei:
        d.bbt_mark([Addr(0, 0, blk=6)], BlockState.BAD)
    assert ei.value.mask == AddrCheck.BLK
    ppa = gen2dev(Addr(0, 0, blk=6), d.geo)           # what the library would have sent
    c = d.driver.admin(AdminOpc.NVM_SET_BBT, nsid=1, cdw10=ppa & 0xFFFFFFFF, cdw11=ppa >> 32,
                       cdw12=int(BlockState.BAD) << 16)
    assert c.status == INVALID_FIELD


def test_addr_erase_of_a_block_past_the_geometry_is_refused_and_erases_nothing(dev):
    """Addr(blk=nblocks) once aliased onto ch 0 / lun 1 / blk 0 (fields were not masked)."""
    victim = page_addrs(0, 1, 0, 0, dev.geo.nplanes)
    dev.addr_erase(block_planes(0, 1, 0, dev.geo.nplanes))
    dev.addr_write(victim, stamp_sectors(victim))
    for bad, mask in ((Addr(blk=dev.geo.nblocks), AddrCheck.BLK), (Addr(lun=dev.geo.nluns), AddrCheck.LUN),
                      (Addr(pg=dev.geo.npages, sec=dev.geo.nsectors), AddrCheck.PG | AddrCheck.SEC)):
        with pytest.raises(AddrError) as ei:
            dev.addr_erase([bad])
        assert ei.value.mask == mask
    with pytest.raises(AddrError):                      # a raw device PPA with bits past the format
        dev.addr_read(np.array([1 << 40], dtype=np.uint64))
    data, _ = dev.addr_read(victim)
    assert buf_diff(data, stamp_sectors(victim)) == 0


def test_addr_read_gives_an_empty_page_and_an_ecc_error_in_one_command_each_their_status(machine):
    d = Device.open(machine)
    d.addr_erase(block_planes(0, 0, 2, 2))
    machine.device.volt.faults.program_fail.add((0, 0, 2, 0))
    p0 = page_addrs(0, 0, 2, 0, 2)
    with pytest.raises(NvmError):
        d.addr_write(p0, stamp_sectors(p0))              # page 0 consumed, reads ECC from now on
    addrs = p0 + page_addrs(0, 0, 2, 1, 2)              # 8 ECC, then 8 never written
    with pytest.raises(NvmError) as ei:
        d.addr_read(addrs)
    assert ei.value.statuses.tolist() == [0x4281] * 8 + [0x42FF] * 8
    assert ei.value.status == 0x4281                    # the worst stands for the call
    assert not ei.value.data.any()
