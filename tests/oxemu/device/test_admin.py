"""Admin command set: queue management, features and log pages. Malformed commands come
back as NVMe statuses, never as exceptions across the bus."""
import struct

import numpy as np

import pytest

from oxemu.wire import AdminOpc, FeatureId, LogPage, NvmOpc
from oxhost.driver import QueuePair
from oxhost.lightnvm import Addr

from tests.helpers import INVALID_FIELD, block_planes, ph_sqe, ppas_of

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
