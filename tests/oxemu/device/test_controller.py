"""NVMe controller: registers read and written by the guest CPU, enable/reset/shutdown,
doorbells and completion posting (SPEC 5)."""
from unicorn.x86_const import UC_X86_REG_RAX

from oxemu.wire import (CAP, CC, CQE, CQE_SIZE, CSTS, SHN, SHST, SQE, SQE_SIZE, AdminOpc, FeatureId,
                        Reg, doorbell_offset)
from oxhost.driver import NvmeDriver
from oxhost.lightnvm import Device, buf_diff

from tests.helpers import block_planes, mapping_dirty_kib, page_addrs, stamp_sectors


def _read64(m, off):
    return m.reg_read32(off) | (m.reg_read32(off + 4) << 32)


def _shst(m):
    return (m.reg_read32(Reg.CSTS) >> CSTS.SHST_SHIFT) & 3


# ---------------------------------------------------------------- registers
def test_controller_cap_read_through_the_cpu_describes_the_device(machine):
    cap = _read64(machine, Reg.CAP)
    assert (cap >> CAP.MQES_SHIFT) & CAP.MQES_MASK == 4095          # 4096-entry queues
    assert cap & CAP.CQR                                              # contiguous queues required
    assert (cap >> CAP.TO_SHIFT) & CAP.TO_MASK > 0
    assert (cap >> CAP.DSTRD_SHIFT) & CAP.DSTRD_MASK == 0
    assert (cap >> CAP.CSS_SHIFT) & 1                                 # NVM command set
    assert (cap >> CAP.MPSMIN_SHIFT) & CAP.MPSMIN_MASK == 0           # 4 KiB pages


def test_controller_vs_reads_1_2(machine):
    assert machine.reg_read32(Reg.VS) == 0x00010200


def test_controller_register_reads_go_through_a_guest_load(machine):
    """The value arrives in the guest CPU's RAX, from an MMIO load in BAR0."""
    machine.cpu.uc.reg_write(UC_X86_REG_RAX, 0)
    v = machine.cpu.load32(machine.bar0 + Reg.VS)
    assert v == machine.cpu.uc.reg_read(UC_X86_REG_RAX) == 0x00010200


def test_controller_read_only_registers_ignore_writes(machine):
    cap = _read64(machine, Reg.CAP)
    machine.reg_write32(Reg.CAP, 0)
    machine.reg_write32(Reg.VS, 0xFFFFFFFF)
    machine.reg_write32(Reg.CSTS, 0xFFFFFFFF)
    assert _read64(machine, Reg.CAP) == cap
    assert machine.reg_read32(Reg.VS) == 0x00010200
    assert machine.reg_read32(Reg.CSTS) & CSTS.CFS == 0


def test_controller_admin_queue_registers_read_back(machine):
    machine.reg_write32(Reg.AQA, 0x001F001F)
    machine.reg_write32(Reg.ASQ, 0x12345000)
    machine.reg_write32(Reg.ASQ + 4, 0x1)
    machine.reg_write32(Reg.ACQ, 0x00010000)
    assert machine.reg_read32(Reg.AQA) == 0x001F001F
    assert _read64(machine, Reg.ASQ) == 0x1_12345000
    assert _read64(machine, Reg.ACQ) == 0x00010000


def test_controller_interrupt_mask_set_and_clear(machine):
    machine.reg_write32(Reg.INTMS, 0b101)
    assert machine.reg_read32(Reg.INTMS) == 0b101
    machine.reg_write32(Reg.INTMC, 0b001)
    assert machine.reg_read32(Reg.INTMS) == 0b100


def test_controller_unmapped_register_offsets_read_zero(machine):
    assert machine.reg_read32(0x40) == 0
    assert machine.reg_read32(0x1000) == 0             # a doorbell reads as 0
    assert machine.reg_read32(Reg.CSTS) & CSTS.CFS == 0


# ---------------------------------------------------------------- enable / reset / shutdown
def test_controller_enable_with_invalid_admin_queues_sets_cfs_not_an_exception(make_machine):
    for aqa, asq in [(0, 0x10000), (0x001F001F, 0x10010), (0x001F001F, 1 << 40)]:
        m = make_machine()
        m.reg_write32(Reg.AQA, aqa)
        m.reg_write32(Reg.ASQ, asq & 0xFFFFFFFF)
        m.reg_write32(Reg.ASQ + 4, asq >> 32)
        m.reg_write32(Reg.ACQ, 0x20000)
        m.reg_write32(Reg.CC, CC.EN | (6 << CC.IOSQES_SHIFT) | (4 << CC.IOCQES_SHIFT))
        csts = m.reg_read32(Reg.CSTS)
        assert csts & CSTS.CFS and not csts & CSTS.RDY, (aqa, hex(asq))


def test_controller_cc_en_1_to_0_resets_and_flushes_the_disk_file(tmp_path, make_machine):
    path = tmp_path / "ox.disk"
    m = make_machine(volt=0, disk=str(path))
    dev = Device.open(m)
    dev.addr_erase(block_planes(0, 1, 2, 2))
    p = page_addrs(0, 1, 2, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    assert mapping_dirty_kib(path) > 0, "precondition: written media pages are dirty"
    m.reg_write32(Reg.CC, m.reg_read32(Reg.CC) & ~CC.EN)
    assert m.reg_read32(Reg.CSTS) & CSTS.RDY == 0
    assert mapping_dirty_kib(path) == 0                 # msync'ed to the file by the reset


def test_controller_after_reset_queues_are_gone_and_a_new_driver_brings_it_up(make_machine):
    m = make_machine()
    dev = Device.open(m)
    dev.addr_erase(block_planes(1, 1, 1, 2))
    p = page_addrs(1, 1, 1, 0, 2)
    data = stamp_sectors(p, 3)
    dev.addr_write(p, data)
    m.reg_write32(Reg.CC, 0)
    assert m.device.controller.sqs == {} and m.device.controller.cqs == {}
    dev2 = Device.open(m)
    assert buf_diff(dev2.addr_read(p)[0], data) == 0    # media survive a controller reset


def test_controller_shutdown_sets_shst_complete_and_flushes(tmp_path, make_machine):
    path = tmp_path / "ox.disk"
    m = make_machine(volt=0, disk=str(path))
    dev = Device.open(m)
    dev.addr_erase(block_planes(1, 0, 3, 2))
    p = page_addrs(1, 0, 3, 0, 2)
    dev.addr_write(p, stamp_sectors(p))
    assert _shst(m) == SHST.NORMAL
    assert mapping_dirty_kib(path) > 0
    cc = m.reg_read32(Reg.CC)
    m.reg_write32(Reg.CC, cc | (SHN.NORMAL << CC.SHN_SHIFT))
    assert _shst(m) == SHST.COMPLETE
    assert mapping_dirty_kib(path) == 0


def test_controller_abrupt_shutdown_also_completes(machine):
    NvmeDriver(machine)
    machine.reg_write32(Reg.CC, machine.reg_read32(Reg.CC) | (SHN.ABRUPT << CC.SHN_SHIFT))
    assert _shst(machine) == SHST.COMPLETE


def test_controller_reenable_after_shutdown_clears_shst(machine):
    Device.open(machine).close()
    assert _shst(machine) == SHST.COMPLETE
    dev = Device.open(machine)                          # the driver resets and enables again
    assert _shst(machine) == SHST.NORMAL
    dev.addr_erase(block_planes(0, 0, 1, 2))


# ---------------------------------------------------------------- doorbells and completions
def test_controller_doorbells_for_missing_queues_or_bad_tails_are_ignored(dev):
    m = dev.driver.m
    for qid, is_cq, value in [(5, False, 1), (5, True, 0), (1, False, 4096), (1, True, 9999), (0, False, 32)]:
        m.reg_write32(doorbell_offset(qid, is_cq), value)
    assert m.reg_read32(Reg.CSTS) & CSTS.CFS == 0
    dev.addr_erase(block_planes(0, 0, 1, 2))            # queue state untouched


def test_controller_doorbells_while_disabled_are_ignored(machine):
    NvmeDriver(machine)
    machine.reg_write32(Reg.CC, 0)
    machine.reg_write32(doorbell_offset(1, False), 1)
    machine.reg_write32(doorbell_offset(0, False), 1)
    assert machine.reg_read32(Reg.CSTS) == 0


def _raw_pair(drv, qid, sq_size, cq_size):
    c = drv.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.NUM_QUEUES, cdw11=qid - 1 | ((qid - 1) << 16))
    assert c.status == 0
    sq, cq = drv.pool.alloc(sq_size * SQE_SIZE), drv.pool.alloc(cq_size * CQE_SIZE)
    assert drv.admin(AdminOpc.CREATE_CQ, prp1=cq.addr, cdw10=qid | ((cq_size - 1) << 16), cdw11=1).status == 0
    assert drv.admin(AdminOpc.CREATE_SQ, prp1=sq.addr, cdw10=qid | ((sq_size - 1) << 16),
                     cdw11=1 | (qid << 16)).status == 0
    return sq, cq


def _cqe(drv, cq, slot):
    result, sq_head, sqid, cid, st = CQE.unpack_from(drv.ram, cq.addr + slot * CQE_SIZE)
    return dict(result=result, sq_head=sq_head, sqid=sqid, cid=cid, status=st >> 1, phase=st & 1)


def test_controller_full_cq_holds_completions_until_the_host_frees_room(dev):
    drv, m = dev.driver, dev.driver.m
    sq, cq = _raw_pair(drv, 2, sq_size=4, cq_size=2)
    for slot, cid in enumerate((100, 101, 102)):
        SQE.pack_into(drv.ram, sq.addr + slot * SQE_SIZE, 0x7F, 0, cid, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    m.reg_write32(doorbell_offset(2, False), 3)
    e0, e1 = _cqe(drv, cq, 0), _cqe(drv, cq, 1)
    assert (e0["cid"], e0["phase"], e0["status"], e0["sqid"]) == (100, 1, 0x4001, 2)
    assert e1["phase"] == 0                             # a 2-entry CQ holds one completion
    m.reg_write32(doorbell_offset(2, True), 1)          # host consumed slot 0
    e1 = _cqe(drv, cq, 1)
    assert (e1["cid"], e1["phase"]) == (101, 1)
    assert _cqe(drv, cq, 0)["phase"] == 1               # slot 0 not yet reused: CQ full again
    m.reg_write32(doorbell_offset(2, True), 0)          # host consumed slot 1
    e0 = _cqe(drv, cq, 0)
    assert (e0["cid"], e0["phase"]) == (102, 0)         # second lap: phase inverted
    assert e0["sq_head"] == 3


def test_controller_posts_sq_head_and_sq_id_in_every_completion(dev):
    drv = dev.driver
    tail0 = drv.queues[1].sq_tail
    c = drv.submit(1, [(0x7F, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)] * 3)
    depth = drv.queues[1].depth
    assert [x.sq_head for x in c] == [(tail0 + i) % depth for i in (1, 2, 3)]


def test_controller_interrupts_reach_the_host_handler(machine):
    seen = []
    machine.set_irq_handler(seen.append)
    drv = NvmeDriver(machine)
    assert seen and set(seen) == {0}                    # admin CQ: vector 0
    n = len(seen)
    sq_cq = drv.admin(AdminOpc.SET_FEATURES, cdw10=FeatureId.NUM_QUEUES, cdw11=1 | (1 << 16))
    assert sq_cq.status == 0
    cq = drv.pool.alloc(8 * CQE_SIZE)
    # I/O CQ 2 with interrupts enabled on vector 3
    assert drv.admin(AdminOpc.CREATE_CQ, prp1=cq.addr, cdw10=2 | (7 << 16), cdw11=1 | 2 | (3 << 16)).status == 0
    sq = drv.pool.alloc(8 * SQE_SIZE)
    assert drv.admin(AdminOpc.CREATE_SQ, prp1=sq.addr, cdw10=2 | (7 << 16), cdw11=1 | (2 << 16)).status == 0
    before = len(seen)
    assert before > n
    SQE.pack_into(drv.ram, sq.addr, 0x7F, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    machine.reg_write32(doorbell_offset(2, False), 1)
    assert seen[before:] == [3]
    k = len(seen)
    drv.submit(1, [(0x7F, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)])   # queue 1 was created without IEN
    assert len(seen) == k
