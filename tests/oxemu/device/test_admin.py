"""Admin command set: queue management, features and log pages. Malformed commands come
back as NVMe statuses, never as exceptions across the bus."""
import logging
import struct

import numpy as np

import pytest

from oxemu import Faults, Geometry, Machine
from oxemu.wire import (LABEL_MAGIC, AdminOpc, CriticalWarning, FeatureId, LogPage, MediaLabel, MediaMode,
                        NvmOpc, SmartLog, TargetKind)
from oxhost.driver import DriverError, NvmeDriver, QueuePair
from oxhost.lightnvm import Addr, Device, NvmError

from tests.helpers import INVALID_FIELD, block_planes, page_addrs, ph_sqe, ppas_of, stamp_sectors

INVALID_QID = 0x4101
INVALID_QSIZE = 0x4102
INVALID_CQ = 0x4100


def _cq(drv, qid, size=8, base=None, cdw11=1):
    base = drv.pool.alloc(4096).addr if base is None else base
    return drv.admin(AdminOpc.CREATE_CQ, prp1=base, cdw10=qid | ((size - 1) << 16), cdw11=cdw11).status


def _sq(drv, qid, cqid, size=8, base=None, cdw11=1):
    base = drv.pool.alloc(4096).addr if base is None else base
    return drv.admin(AdminOpc.CREATE_SQ, prp1=base, cdw10=qid | ((size - 1) << 16),
                     cdw11=cdw11 | (cqid << 16)).status


def _allow_queues(drv, n):
    c = drv.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.NUM_QUEUES, cdw11=(n - 1) | ((n - 1) << 16))
    assert c.status == 0
    return c.result


# ---------------------------------------------------------------- queues
@pytest.mark.parametrize("qid", [0, 1, 2], ids=["admin", "in-use", "beyond-granted"])
def test_admin_create_cq_with_a_bad_queue_id_fails_with_0x4101(dev, qid):
    assert _cq(dev.driver, qid) == INVALID_QID


@pytest.mark.parametrize("size", [1, 4097, 65536])
def test_admin_create_cq_with_a_bad_size_fails_with_0x4102(dev, size):
    _allow_queues(dev.driver, 4)
    assert _cq(dev.driver, 2, size=size) == INVALID_QSIZE


def test_admin_create_cq_that_is_not_physically_contiguous_fails_with_0x0002(dev):
    _allow_queues(dev.driver, 4)
    assert _cq(dev.driver, 2, cdw11=0) == INVALID_FIELD


def test_admin_create_queue_base_not_page_aligned_fails_with_0x4013(dev):
    _allow_queues(dev.driver, 4)
    base = dev.driver.pool.alloc(8192).addr + 64
    assert _cq(dev.driver, 2, base=base) == 0x4013
    assert _cq(dev.driver, 2) == 0
    assert _sq(dev.driver, 2, 2, base=base) == 0x4013


def test_admin_create_queue_outside_guest_ram_fails_with_0x0004(dev):
    drv = dev.driver
    _allow_queues(drv, 4)
    end = drv.ram.shape[0]
    assert _cq(drv, 2, base=end) == 0x0004
    assert _cq(drv, 2, base=end - 4096, size=1024) == 0x0004      # ring runs off the end
    assert _cq(drv, 2) == 0
    assert _sq(drv, 2, 2, base=1 << 44) == 0x0004


def test_admin_create_sq_naming_a_missing_or_admin_cq_fails_with_0x4100(dev):
    drv = dev.driver
    _allow_queues(drv, 4)
    assert _sq(drv, 2, 3) == INVALID_CQ
    assert _sq(drv, 2, 0) == INVALID_CQ


@pytest.mark.parametrize("qid", [0, 1, 2], ids=["admin", "in-use", "beyond-granted"])
def test_admin_create_sq_with_a_bad_queue_id_fails_with_0x4101(dev, qid):
    assert _sq(dev.driver, qid, 1) == INVALID_QID


def test_admin_create_sq_with_a_bad_size_fails_with_0x4102(dev):
    drv = dev.driver
    _allow_queues(drv, 4)
    assert _cq(drv, 2) == 0
    assert _sq(drv, 2, 2, size=1) == INVALID_QSIZE
    assert _sq(drv, 2, 2, size=5000) == INVALID_QSIZE


@pytest.mark.parametrize("op", [AdminOpc.DELETE_SQ, AdminOpc.DELETE_CQ])
@pytest.mark.parametrize("qid", [0, 7, 0xFFFF])
def test_admin_delete_of_a_missing_or_admin_queue_fails_with_0x4101(dev, op, qid):
    assert dev.driver.admin(op, cdw10=qid).status == INVALID_QID


def test_admin_delete_cq_with_an_sq_still_attached_fails_with_0x0002(dev):
    assert dev.driver.admin(AdminOpc.DELETE_CQ, cdw10=1).status == INVALID_FIELD
    dev.addr_erase(block_planes(0, 0, 1, 2))          # I/O queue 1 untouched


def test_admin_second_io_queue_pair_carries_io(dev):
    drv = dev.driver
    granted = _allow_queues(drv, 2)
    assert granted == 1 | (1 << 16)
    qp = QueuePair(drv.pool, 2, 8)
    assert drv.admin(AdminOpc.CREATE_CQ, prp1=qp.cq.addr, cdw10=2 | (7 << 16), cdw11=1).status == 0
    assert drv.admin(AdminOpc.CREATE_SQ, prp1=qp.sq.addr, cdw10=2 | (7 << 16), cdw11=1 | (2 << 16)).status == 0
    drv.queues[2] = qp
    blk = ppas_of(dev, block_planes(1, 1, 2, 2))
    lst = drv.pool.alloc(4096)
    lst.array.view("<u8")[:2] = blk
    for _ in range(20):                                # wraps the 8-entry rings twice
        c = drv.submit_raw(2, ph_sqe(NvmOpc.PH_ERASE, lst.addr, 1, control=1))
        assert c.status == 0
    assert drv.admin(AdminOpc.DELETE_CQ, cdw10=2).status == INVALID_FIELD   # SQ 2 still uses it
    assert drv.admin(AdminOpc.DELETE_SQ, cdw10=2).status == 0
    assert drv.admin(AdminOpc.DELETE_CQ, cdw10=2).status == 0
    del drv.queues[2]
    assert drv.admin(AdminOpc.DELETE_SQ, cdw10=2).status == INVALID_QID


# ---------------------------------------------------------------- features
def test_admin_number_of_queues_is_granted_and_read_back(dev):
    drv = dev.driver
    assert _allow_queues(drv, 1000) == 63 | (63 << 16)            # capped at what the device has
    c = drv.admin(AdminOpc.GET_FEATURES, cdw10=FeatureId.NUM_QUEUES)
    assert c.status == 0 and c.result == 63 | (63 << 16)


def test_admin_set_features_value_reads_back(dev):
    drv = dev.driver
    assert drv.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.ARBITRATION, cdw11=0x0303).status == 0
    assert drv.admin(AdminOpc.GET_FEATURES, cdw10=FeatureId.ARBITRATION).result == 0x0303


@pytest.mark.parametrize("op", [AdminOpc.SET_FEATURES, AdminOpc.GET_FEATURES])
def test_admin_unknown_feature_fails_with_0x0002(dev, op):
    assert dev.driver.admin(op, cdw10=0x7E).status == INVALID_FIELD


def test_admin_saving_a_feature_fails_with_0x410D(dev):
    c = dev.driver.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.ARBITRATION | (1 << 31))
    assert c.status == 0x410D


# ---------------------------------------------------------------- log pages
def _log(drv, lid, nbytes):
    buf = drv.pool.alloc(max(4096, nbytes))
    buf.array[:] = 0xCC
    prp1, prp2 = buf.addr, buf.addr + 4096 if nbytes > 4096 else 0
    c = drv.admin(AdminOpc.GET_LOG_PAGE, prp1=prp1, prp2=prp2, cdw10=lid | ((nbytes // 4 - 1) << 16))
    return c, bytes(buf.array)


def test_admin_error_log_records_the_last_failed_command(dev):
    drv = dev.driver
    c = drv.submit_raw(1, ph_sqe(0x7F, 0))
    assert c.status == 0x4001
    c_log, raw = _log(drv, LogPage.ERROR, 64)
    assert c_log.status == 0
    count, sqid, cid, status = struct.unpack_from("<QHHH", raw, 0)
    assert (sqid, cid, status >> 1) == (1, c.cid, 0x4001)
    assert count >= 1
    assert raw[64:72] == b"\xcc" * 8                   # exactly the 64 bytes asked for


def test_admin_smart_log_counts_host_read_and_write_commands(dev):
    drv = dev.driver
    blk = block_planes(0, 0, 1, 2)
    dev.addr_erase(blk)
    _, raw = _log(drv, LogPage.SMART, 512)
    reads0, writes0 = struct.unpack_from("<Q", raw, 64)[0], struct.unpack_from("<Q", raw, 80)[0]
    page = [a.replace(sec=s) for a in blk for s in range(dev.geo.nsectors)]
    dev.addr_write(page, np.zeros(len(page) * 4096, np.uint8))
    dev.addr_read(page[:1])
    dev.addr_read(page[:1])
    dev.addr_erase(block_planes(0, 0, 2, 2))          # neither a read nor a write
    _, raw = _log(drv, LogPage.SMART, 512)
    assert struct.unpack_from("<Q", raw, 64)[0] == reads0 + 2
    assert struct.unpack_from("<Q", raw, 80)[0] == writes0 + 1


def test_admin_unknown_log_page_fails_with_0x4109(dev):
    c, raw = _log(dev.driver, 0x77, 512)
    assert c.status == 0x4109
    assert raw[:512] == b"\xcc" * 512


@pytest.mark.parametrize("opcode", [0x03, 0x07, 0x80, 0xC0, 0xE0, 0xFF])
def test_admin_unknown_opcode_fails_with_0x4001(dev, opcode):
    assert dev.driver.admin(opcode).status == 0x4001


@pytest.mark.parametrize("opcode", [NvmOpc.PH_READ, NvmOpc.PH_WRITE, NvmOpc.PH_ERASE])
def test_admin_queue_refuses_io_opcodes_with_0x4001(dev, opcode):
    assert dev.driver.admin(opcode, nsid=1).status == 0x4001


def test_admin_set_bbt_with_more_than_64_addresses_is_rejected_with_0x0002(dev):
    drv = dev.driver
    lst = drv.pool.alloc(8 * 65)
    c = drv.admin(AdminOpc.NVM_SET_BBT, nsid=1, cdw10=lst.addr, cdw12=64 | (1 << 16))
    assert c.status == INVALID_FIELD


def test_admin_set_bbt_with_a_ppa_list_outside_guest_ram_fails_with_0x0004(dev):
    drv = dev.driver
    c = drv.admin(AdminOpc.NVM_SET_BBT, nsid=1, cdw10=drv.ram.shape[0] - 8, cdw12=3 | (1 << 16))
    assert c.status == 0x0004
    assert not dev.bbt_get(Addr(0, 0)).blks.any()


def test_admin_abort_is_answered(dev):
    assert dev.driver.admin(AdminOpc.ABORT, cdw10=1 | (5 << 16)).status == 0


# ---------------------------------------------------------------- OX media label, SMART
WRITE_PROTECTED = 0x4020


def _set_target(drv, target=TargetKind.PBLK, b=0, e=3, uuid=b"", capacity=0):
    lab = MediaLabel(target=target, lun_begin=b, lun_end=e, capacity_bytes=capacity)
    lab.uuid[:] = list(uuid.ljust(16, b"\0"))
    buf = drv.pool.alloc(4096)
    buf.array[:512] = np.frombuffer(bytes(lab), np.uint8)
    try:
        return drv.admin(AdminOpc.OX_SET_TARGET, prp1=buf.addr).status
    finally:
        buf.free()


def _smart(drv) -> SmartLog:
    c, raw = _log(drv, LogPage.SMART, 512)
    assert c.status == 0
    return SmartLog.from_buffer_copy(raw[:512])


def test_admin_media_label_log_page_reports_live_lifetime_counters(dev):
    drv = dev.driver
    c, raw = _log(drv, LogPage.OX_MEDIA_LABEL, 512)
    assert c.status == 0
    lab = MediaLabel.from_buffer_copy(raw[:512])
    assert lab.magic == LABEL_MAGIC and lab.mode == MediaMode.BLANK and lab.power_cycles == 1   # this power-on
    p = page_addrs(0, 0, 1, 0, 2)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    dev.addr_write(p, stamp_sectors(p))
    dev.addr_read(p)
    lab = drv.media_label()
    assert (lab.mode, lab.power_cycles, lab.unsafe_shutdowns) == (MediaMode.OPEN_CHANNEL, 1, 0)
    assert (lab.host_write_cmds, lab.host_read_cmds, lab.data_units_written, lab.data_units_read) == (1, 1, 1, 1)


def test_admin_set_target_records_the_pblk_target_on_open_channel_media(dev):
    drv = dev.driver
    assert _set_target(drv, b=1, e=2, uuid=b"0123456789abcdef", capacity=8 << 20) == 0
    lab = drv.media_label()
    assert (lab.mode, lab.target, lab.lun_begin, lab.lun_end) == (MediaMode.OPEN_CHANNEL, TargetKind.PBLK, 1, 2)
    assert bytes(lab.uuid) == b"0123456789abcdef" and lab.capacity_bytes == 8 << 20
    assert lab.power_cycles == 1 and lab.labelled_s > 0             # a media mutation
    assert _set_target(drv, b=1, e=2, uuid=b"0123456789abcdef", capacity=8 << 20) == 0   # again: fine


def test_admin_set_target_with_the_same_range_fills_in_an_all_zero_uuid_only(dev):
    drv = dev.driver
    assert _set_target(drv) == 0
    assert not any(drv.media_label().uuid)
    assert _set_target(drv, uuid=b"first-uuid") == 0
    assert bytes(drv.media_label().uuid).rstrip(b"\0") == b"first-uuid"
    assert _set_target(drv, uuid=b"second-uuid") == 0
    assert bytes(drv.media_label().uuid).rstrip(b"\0") == b"first-uuid"


def test_admin_set_target_with_another_range_is_refused_with_0x4002_and_a_warning(dev, caplog):
    drv = dev.driver
    assert _set_target(drv, b=0, e=3) == 0
    with caplog.at_level(logging.WARNING, logger="oxemu.device.lnvm"):
        assert _set_target(drv, b=0, e=1) == INVALID_FIELD
    msg = caplog.records[-1].getMessage()
    assert "LUNs 0-3" in msg and "LUNs 0-1" in msg
    lab = drv.media_label()
    assert (lab.lun_begin, lab.lun_end) == (0, 3)


@pytest.mark.parametrize("kw", [dict(target=TargetKind.NONE), dict(target=9), dict(b=2, e=1), dict(b=0, e=4)],
                         ids=["no-target", "unknown-target", "reversed", "beyond-the-luns"])
def test_admin_set_target_with_an_impossible_target_is_refused_with_0x4002(dev, kw):
    assert _set_target(dev.driver, **kw) == INVALID_FIELD
    assert dev.driver.media_label().mode == MediaMode.BLANK


def test_admin_set_target_in_appnvm_mode_is_an_invalid_opcode(make_machine):
    drv = NvmeDriver(make_machine(lnvm=0, geometry=Geometry.small(nblocks=16)))
    assert _set_target(drv) == 0x4001
    assert drv.media_label().mode == MediaMode.APPNVM


def test_admin_smart_log_reports_lifetime_power_cycles_unsafe_shutdowns_and_media_errors(tmp_path):
    path = str(tmp_path / "ox.disk")
    geo = Geometry.small()
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(power_cut_after=2)) as m:
        dev = Device.open(m, timeout=0.5)
        dev.addr_erase(block_planes(0, 0, 1, 2))
        with pytest.raises(DriverError):
            dev.addr_erase(block_planes(0, 0, 2, 2))
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(read_error_rate=1.0)) as m:
        dev = Device.open(m)
        p = page_addrs(0, 0, 1, 0, 2)
        dev.addr_write(p, stamp_sectors(p))
        with pytest.raises(NvmError):
            dev.addr_read(p)
        s = _smart(dev.driver)
        assert (s.power_cycles[0], s.unsafe_shutdowns[0]) == (2, 1)
        assert s.media_errors[0] == m.device.volt.counters["read_errors"] >= 2      # every failed page read
        assert (s.host_writes[0], s.data_units_written[0]) == (1, 1)
        assert s.host_reads[0] == m.device.controller.opcodes[NvmOpc.PH_READ] >= 1     # the host retries
        assert s.critical_warning == 0 and s.temperature == 313 and s.avail_spare == 100
        dev.close()


def test_admin_smart_log_warns_read_only_media(make_machine, tmp_path):
    m = make_machine()
    dev = Device.open(m)
    assert not _smart(dev.driver).critical_warning & CriticalWarning.READ_ONLY
    m.device.volt.set_read_only("test")
    assert _smart(dev.driver).critical_warning & CriticalWarning.READ_ONLY
    path = str(tmp_path / "ox.disk")
    with Machine(volt=0, disk=path, geometry=Geometry.small()) as w:
        Device.open(w).close()
    r = make_machine(volt=0, disk=path, readonly=True)              # a read-only open is no warning
    assert _smart(Device.open(r).driver).critical_warning == 0
    r.close()
    with Machine(volt=0, disk=path, geometry=Geometry.small()) as w:  # media placed read-only: warned
        w.device.volt.set_read_only("test")
    r = make_machine(volt=0, disk=path, readonly=True)
    assert _smart(Device.open(r).driver).critical_warning == CriticalWarning.READ_ONLY


def test_admin_set_target_on_a_read_only_open_succeeds_only_when_nothing_changes(make_machine, tmp_path):
    path = str(tmp_path / "ox.disk")
    with Machine(volt=0, disk=path, geometry=Geometry.small()) as w:
        drv = Device.open(w).driver
        assert _set_target(drv, uuid=b"u") == 0
        drv.shutdown()
    drv = Device.open(make_machine(volt=0, disk=path, readonly=True)).driver
    assert _set_target(drv, uuid=b"u") == 0
    assert _set_target(drv, b=0, e=1) == INVALID_FIELD
    m2 = make_machine(volt=0, disk=str(tmp_path / "blank.disk"))
    Device.open(m2).close()
    m2.close()
    drv = Device.open(make_machine(volt=0, disk=str(tmp_path / "blank.disk"), readonly=True)).driver
    assert _set_target(drv) == WRITE_PROTECTED
