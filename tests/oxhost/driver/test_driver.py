"""User-space NVMe driver: bring-up, batching several commands per doorbell, raw
submission, queue wrap-around, PRP lists, timeouts and fatal controller status."""

import numpy as np
import pytest

from oxemu.wire import CC, CSTS, AdminOpc, Cns, NvmOpc, Reg
from oxhost.driver import CommandTimeout, ControllerFatal, DriverError, NvmeDriver
from oxhost.lightnvm import Device, buf_diff

from tests.helpers import SECTOR, block_planes, page_addrs, ph_sqe, ppas_of, stamp_sectors

BAD_OPCODE = (0x7F, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def test_driver_brings_the_controller_up(machine):
    drv = NvmeDriver(machine)
    assert machine.reg_read32(Reg.CSTS) & CSTS.RDY
    assert machine.reg_read32(Reg.CC) & CC.EN
    assert drv.mqes == 4096 and drv.version == 0x00010200
    assert drv.id_ctrl.vid == 0x1D1D
    assert set(drv.queues) == {0, 1}
    assert machine.device.controller.sqs.keys() == {0, 1}


def test_driver_io_queue_depth_is_capped_by_mqes(machine):
    drv = NvmeDriver(machine, io_depth=100_000)
    assert drv.queues[1].depth == 4096


def test_driver_batches_several_commands_per_doorbell(dev):
    drv = dev.driver
    ctrl = drv.m.device.controller
    d0, c0, io0 = drv.stats["doorbells"], drv.stats["commands"], ctrl.counters["io_cmds"]
    comps = drv.submit(1, [BAD_OPCODE] * 5)
    assert drv.stats["doorbells"] - d0 == 1
    assert drv.stats["commands"] - c0 == 5
    assert ctrl.counters["io_cmds"] - io0 == 5
    assert [c.status for c in comps] == [0x4001] * 5
    assert len({c.cid for c in comps}) == 5


def test_driver_acknowledges_completions_in_batches_riding_on_a_submission(dev):
    """The CQ head doorbell goes out once per quarter queue of completions, in the same CPU
    run as the next SQ tail: one register write per command instead of two."""
    drv = dev.driver
    ctrl = drv.m.device.controller
    qp = drv.queues[1]
    for _ in range(qp.cq_db_every + 3):
        d0, hw0 = drv.stats["doorbells"], ctrl.counters["doorbells"]
        pending = qp.cq_db_pending
        drv.submit(1, [BAD_OPCODE])
        assert drv.stats["doorbells"] - d0 == 1                              # one CPU run ...
        assert ctrl.counters["doorbells"] - hw0 == (2 if pending >= qp.cq_db_every else 1)
        assert (qp.cq_head - ctrl.cqs[1].head) % qp.depth == qp.cq_db_pending
        assert qp.cq_db_pending <= qp.cq_db_every


def test_driver_submit_raw_sends_the_bytes_and_sets_only_the_cid(dev):
    drv = dev.driver
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    data = stamp_sectors(p)
    dev.addr_write(p, data)
    buf = drv.pool.alloc(SECTOR)
    ppa = ppas_of(dev, p[5:6])[0]
    c = drv.submit_raw(1, ph_sqe(NvmOpc.PH_READ, ppa, 0, prp1=buf.addr))
    assert c.status == 0 and c.result == 0
    assert np.array_equal(buf.array, data[5 * SECTOR:6 * SECTOR])
    assert c.cid == drv.queues[1].next_cid - 1
    assert c.sq_head == drv.queues[1].sq_tail


def test_driver_submit_raw_refuses_a_wrong_size(dev):
    with pytest.raises(DriverError):
        dev.driver.submit_raw(1, b"\0" * 63)


def test_driver_submit_to_a_missing_queue_or_too_big_a_batch_is_refused(dev):
    drv = dev.driver
    with pytest.raises(DriverError):
        drv.submit(7, [BAD_OPCODE])
    with pytest.raises(DriverError):
        drv.submit(1, [BAD_OPCODE] * drv.queues[1].depth)
    assert drv.submit(1, []) == []
    assert drv.submit(1, [BAD_OPCODE])[0].status == 0x4001    # the queue is still in step


@pytest.mark.parametrize("batch", [1, 3])
def test_driver_queues_wrap_around_many_times(open_dev, batch):
    dev = open_dev(driver_kw=dict(io_depth=4))
    drv = dev.driver
    cids = []
    for _ in range(25):
        comps = drv.submit(1, [BAD_OPCODE] * batch)
        assert [c.status for c in comps] == [0x4001] * batch
        cids += [c.cid for c in comps]
    assert cids == list(range(25 * batch))
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    data = stamp_sectors(p)
    dev.addr_write(p, data)
    assert buf_diff(dev.addr_read(p)[0], data) == 0


def test_driver_cids_wrap_at_16_bits(dev):
    qp = dev.driver.queues[1]
    qp.next_cid = 0xFFFE
    comps = dev.driver.submit(1, [BAD_OPCODE] * 4)
    assert [c.cid for c in comps] == [0xFFFE, 0xFFFF, 0, 1]


@pytest.mark.parametrize("nsec", [1, 2, 3, 16, 64])
def test_driver_prps_cover_transfers_of_every_size(dev, nsec):
    """PRP1 only, PRP1+PRP2, and PRP lists, from a buffer that starts mid-page."""
    pages = [page_addrs(ch, lun, 2, pg, 2) for pg in range(2) for ch in range(2) for lun in range(2)]
    for ch in range(2):
        for lun in range(2):
            dev.addr_erase(block_planes(ch, lun, 2, 2))
    addrs = [a for p in pages for a in p]
    data = stamp_sectors(addrs)
    dev.addr_write(addrs, data)
    big = dev.buf_alloc(nsec * SECTOR + 2 * SECTOR)
    out = big[512:512 + nsec * SECTOR]
    big[:] = 0xEE
    dev.addr_read(addrs[:nsec], out=out)
    assert buf_diff(out, data[:nsec * SECTOR]) == 0
    assert (big[:512] == 0xEE).all() and (big[512 + nsec * SECTOR:] == 0xEE).all()


def test_driver_prp_builder_lists_pages_after_the_first(dev):
    drv = dev.driver
    prp1, prp2 = drv.prps(1, 0, 0x100200, 5 * SECTOR)
    assert prp1 == 0x100200
    lst = drv.ram[prp2:prp2 + 5 * 8].view("<u8").tolist()
    assert lst == [0x101000, 0x102000, 0x103000, 0x104000, 0x105000]
    assert drv.prps(1, 0, 0x100000, SECTOR) == (0x100000, 0)
    assert drv.prps(1, 0, 0x100800, SECTOR) == (0x100800, 0x101000)


def test_driver_times_out_when_the_controller_never_answers(dev):
    drv = dev.driver
    drv.m.reg_write32(Reg.CC, 0)                         # disabled: doorbells fall on deaf ears
    drv.timeout = 0.05
    with pytest.raises(CommandTimeout):
        drv.submit(1, [BAD_OPCODE])


def test_driver_reports_controller_fatal_status(machine):
    drv = NvmeDriver(machine, timeout=3600.0)            # noticed at once, not at the timeout
    machine.device.controller.csts |= CSTS.CFS           # as a device fault leaves it
    with pytest.raises(ControllerFatal):
        drv.submit(1, [BAD_OPCODE])


def test_driver_shutdown_deletes_io_queues_and_is_repeatable(dev):
    drv = dev.driver
    drv.shutdown()
    assert set(drv.queues) == {0}
    assert drv.m.device.controller.sqs.keys() == {0}
    drv.shutdown()


def test_driver_identify_returns_4096_bytes(dev):
    raw = dev.driver.identify(Cns.CONTROLLER)
    assert len(raw) == 4096 and raw[:2] == b"\x1d\x1d"


def test_driver_admin_status_comes_back_unraised(dev):
    c = dev.driver.admin(AdminOpc.DELETE_SQ, cdw10=99)
    assert c.status == 0x4101


def test_driver_reopens_a_running_controller(machine):
    d1 = Device.open(machine)
    d1.addr_erase(block_planes(1, 0, 1, 2))
    p = page_addrs(1, 0, 1, 0, 2)
    data = stamp_sectors(p)
    d1.addr_write(p, data)
    d2 = Device.open(machine)                            # resets and enables again
    assert buf_diff(d2.addr_read(p)[0], data) == 0


def _moved(drv) -> tuple[int, int]:
    return drv.stats["bytes_out"], drv.stats["bytes_in"]


def test_driver_counts_bytes_out_for_a_write_and_in_for_a_read(dev):
    """A page written with its OOB moves data + metadata host to device; reading it back
    moves the data device to host (the metadata too when asked for); an erase moves none."""
    drv, geo = dev.driver, dev.geo
    secb, sos = geo.sector_nbytes, geo.meta_nbytes
    blk = block_planes(0, 1, 3, geo.nplanes)
    page = page_addrs(0, 1, 3, 0, geo.nplanes, geo.nsectors)
    n = len(page)
    out0, in0 = _moved(drv)
    dev.addr_erase(blk)
    assert _moved(drv) == (out0, in0)
    dev.addr_write(page, stamp_sectors(page), meta=np.full(n * sos, 7, np.uint8))
    assert _moved(drv) == (out0 + n * (secb + sos), in0)
    dev.addr_read(page)
    assert _moved(drv) == (out0 + n * (secb + sos), in0 + n * secb)
    dev.addr_read(page, with_meta=True)
    assert _moved(drv) == (out0 + n * (secb + sos), in0 + n * secb + n * (secb + sos))


def test_driver_counts_the_4k_read_path_and_admin_data(dev):
    drv, secb = dev.driver, dev.geo.sector_nbytes
    page = page_addrs(1, 0, 2, 0, dev.geo.nplanes, dev.geo.nsectors)
    dev.addr_erase(block_planes(1, 0, 2, dev.geo.nplanes))
    dev.addr_write(page, stamp_sectors(page))
    buf = dev.buf_alloc(secb)
    out0, in0 = _moved(drv)
    dev.addr_read([page[0]], out=buf)                  # one command, straight into guest RAM
    assert _moved(drv) == (out0, in0 + secb)
    drv.identify(Cns.CONTROLLER)
    drv.media_label()                                  # a 512-byte log page
    assert _moved(drv) == (out0, in0 + secb + 4096 + 512)


def test_driver_counts_nvme_reads_and_writes_of_the_appnvm_namespace(make_machine):
    from oxemu import Geometry
    from oxhost.nvme import NvmeBlockDevice
    bd = NvmeBlockDevice.open(make_machine(lnvm=0, geometry=Geometry.small(nblocks=16)))
    drv = bd.driver
    data = np.random.default_rng(3).integers(0, 256, 3 << 20, dtype=np.uint8)   # 3 commands of 1 MiB
    out0, in0 = _moved(drv)
    bd.write_sectors(8, data)
    assert _moved(drv) == (out0 + data.nbytes, in0)
    assert (bd.read_sectors(8, data.nbytes // SECTOR) == data).all()
    assert _moved(drv) == (out0 + data.nbytes, in0 + data.nbytes)
    bd.discard_sectors(8, 16)                          # one DSM range of 16 bytes goes out
    assert _moved(drv) == (out0 + data.nbytes + 16, in0 + data.nbytes)
    assert bd.stats()["driver"]["bytes_out"] == out0 + data.nbytes + 16
    bd.close()
