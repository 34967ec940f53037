"""The emulated machine: guest RAM shared by numpy and the CPU, BAR0 behind MMIO, the PCI
ids a driver probes, lifecycle, and memory that grows with data rather than capacity."""
import gc

import numpy as np
import pytest

from oxemu import Geometry, Machine
from oxemu.machine import BAR0_BASE, BAR0_SIZE
from oxemu.machine.cpu import BATCH_MAX, RESERVED_END
from oxemu.wire import PCI_DEVICE_ID, PCI_VENDOR_ID, PciCfg, Reg
from oxhost.lightnvm import Device, VBlk, buf_fill

from tests.helpers import block_planes, vmrss_kib


def test_machine_pci_config_space_names_an_open_channel_nvme_device(machine):
    assert machine.config_read(PciCfg.VENDOR_ID) == PCI_VENDOR_ID == 0x1D1D
    assert machine.config_read(PciCfg.DEVICE_ID) == PCI_DEVICE_ID == 0x1F1F
    assert machine.config_read(PciCfg.CLASS_CODE) == 0x010802
    assert machine.config_read(0x40) == 0


def test_machine_bar0_is_at_least_16_kib(machine):
    assert BAR0_SIZE >= 16 << 10
    assert machine.bar0 == BAR0_BASE


def test_machine_guest_ram_is_shared_by_numpy_and_the_cpu(machine):
    addr = RESERVED_END + 0x100
    machine.ram[addr:addr + 4] = [0x78, 0x56, 0x34, 0x12]
    assert machine.cpu.load32(addr) == 0x12345678
    machine.cpu.store32(addr + 8, 0xCAFEF00D)
    assert bytes(machine.ram[addr + 8:addr + 12]) == (0xCAFEF00D).to_bytes(4, "little")


def test_machine_batched_stores_all_land_in_one_cpu_run(machine):
    base = RESERVED_END + 0x1000
    pairs = [(base + 4 * i, 0x1000 + i) for i in range(BATCH_MAX)]
    machine.cpu.store32_many(pairs)
    assert machine.ram[base:base + 4 * BATCH_MAX].view("<u4").tolist() == [v for _, v in pairs]
    with pytest.raises(ValueError):
        machine.cpu.store32_many(pairs + pairs[:1])


def test_machine_register_writes_reach_the_controller(machine):
    machine.reg_write32_many([(Reg.AQA, 0x00070007), (Reg.ASQ, 0x20000), (Reg.ACQ, 0x21000)])
    ctrl = machine.device.controller
    assert (ctrl.aqa, ctrl.asq, ctrl.acq) == (0x00070007, 0x20000, 0x21000)


def test_machine_ram_size_is_configurable_and_validated(make_machine):
    m = make_machine(ram_mib=64)
    assert m.ram.shape[0] == 64 << 20
    dev = Device.open(m)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    with pytest.raises(ValueError):
        Machine(ram_mib=0, geometry=Geometry.small())


def test_machine_with_a_bad_timing_mode_fails_without_locking_the_disk_file(tmp_path):
    """A machine that cannot be built leaves its disk file free for the next one."""
    path = str(tmp_path / "ox.disk")
    with pytest.raises(ValueError):
        Machine(volt=0, disk=path, geometry=Geometry.small(), timing="bogus")
    with Machine(volt=0, disk=path, geometry=Geometry.small()):
        pass


def test_machine_close_is_idempotent_and_context_managed():
    with Machine(geometry=Geometry.small()) as m:
        Device.open(m)
    assert m.ram is None
    m.close()


def test_machine_default_geometry_opens_with_small_rss_growth():
    gc.collect()
    before = vmrss_kib()
    m = Machine()                                       # 4 GiB of media, 256 MiB of guest RAM
    try:
        dev = Device.open(m)
        assert dev.geo.tbytes == 4 << 30
        grown = vmrss_kib() - before
        assert grown < 64 << 10, f"opening grew RSS by {grown} KiB"
    finally:
        m.close()


def test_machine_rss_grows_with_data_written_not_capacity():
    gc.collect()
    m = Machine()
    try:
        dev = Device.open(m)
        base = vmrss_kib()
        nbytes = 16 << 20
        buf = dev.buf_alloc(nbytes)
        buf_fill(buf, 1)
        v = VBlk.alloc_line(dev, 0, 3, 0, 0, 7)          # 4 blocks, one per channel
        v.erase()
        v.write(buf)
        grown = vmrss_kib() - base
        # the 16 MiB buffer plus 16 MiB of media (+ OOB), far from the 4.25 GiB capacity
        assert 16 << 10 <= grown < 96 << 10, f"writing 16 MiB grew RSS by {grown} KiB"
        assert np.array_equal(v.pread(4096, 0), buf[:4096])
    finally:
        m.close()


def test_machine_stats_report_media_counters_including_torn_pages(make_machine):
    from oxemu import Faults
    from oxhost.driver import DriverError
    from tests.helpers import page_addrs, stamp_sectors
    m = make_machine(faults=Faults(power_cut_after=3))
    dev = Device.open(m, timeout=0.5)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p = page_addrs(0, 0, 1, 0, 2)
    with pytest.raises(DriverError):
        dev.addr_write(p, stamp_sectors(p))          # plane 0 programmed, plane 1 torn
    st = m.stats()
    assert st["media"]["erases"] == 2 and st["media"]["programs"] == 1
    assert st["media"]["torn_pages"] == 1
    assert st["media_bytes_programmed"] == m.geometry.page_nbytes
    assert st["io_cmds"] == 2 and "virtual_ns" in st and "device_cpu_s" in st


@pytest.mark.parametrize("lnvm", [0, 1], ids=["appnvm", "open-channel"])
def test_machine_read_only_needs_a_disk_file(tmp_path, lnvm):
    with pytest.raises(ValueError, match="readonly"):
        Machine(lnvm=lnvm, volt=1, disk=str(tmp_path / "ox.disk"), geometry=Geometry.small(), readonly=True)
    assert not (tmp_path / "ox.disk").exists()


def test_machine_close_returns_guest_ram_even_while_a_view_of_it_lives():
    gc.collect()
    m = Machine(volt=1, geometry=Geometry.small())
    view = m.ram[RESERVED_END:RESERVED_END + (32 << 20)]
    view[:] = 1                                          # 32 MiB of guest RAM touched
    before = vmrss_kib()
    m.close()
    assert before - vmrss_kib() >= 30 << 10, "closing kept the touched guest RAM"
    assert view[:4096].sum() == 0                        # powered off: the view reads zeros
