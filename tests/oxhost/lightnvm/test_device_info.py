"""liblightnvm test_dev: open a device and read its info and geometry off the bus."""
import pytest

from oxemu import Geometry
from oxemu.volt import NandTiming
from oxemu.wire import CSTS, MPOS_DUAL_PLANE, MPOS_QUAD_PLANE, PCI_DEVICE_ID, PCI_VENDOR_ID, SHST, Reg
from oxhost.lightnvm import Device, NotOpenChannel, PMode


def test_device_open_reports_the_spec_default_geometry(default_dev):
    g = default_dev.geo
    assert (g.nchannels, g.nluns, g.nblocks, g.npages, g.nplanes, g.nsectors) == (8, 4, 32, 128, 2, 4)
    assert (g.sector_nbytes, g.page_nbytes, g.meta_nbytes) == (4096, 16384, 16)
    assert g.tbytes == 4 << 30
    assert g.nsectors_total == (4 << 30) // 4096
    assert g.block_nbytes == 4 << 20           # one chunk: 128 pages x 2 planes x 4 sectors
    assert g.mpos == MPOS_DUAL_PLANE
    assert default_dev.pmode == PMode.DUAL


def test_device_open_reports_the_configured_small_geometry(machine, dev):
    want = machine.geometry
    g = dev.geo
    assert (g.nchannels, g.nluns, g.nblocks, g.npages, g.nplanes, g.nsectors) == (
        want.nchannels, want.nluns, want.nblocks, want.npages, want.nplanes, want.nsectors)
    assert g.tbytes == want.data_nbytes


def test_device_ppaf_matches_the_spec_bit_layout(default_dev):
    f = default_dev.geo.ppaf
    assert (f.sec_off, f.sec_len) == (0, 2)
    assert (f.pl_off, f.pl_len) == (2, 1)
    assert (f.pg_off, f.pg_len) == (3, 7)
    assert (f.blk_off, f.blk_len) == (10, 5)
    assert (f.lun_off, f.lun_len) == (15, 2)
    assert (f.ch_off, f.ch_len) == (17, 3)


def test_device_timings_come_from_the_nand_timing_model(default_dev):
    nand = NandTiming()
    assert default_dev.geo.timings_ns == dict(
        trdt=nand.t_read_ns, trdm=nand.t_read_max_ns, tprt=nand.t_prog_ns,
        tprm=nand.t_prog_max_ns, tbet=nand.t_erase_ns, tbem=nand.t_erase_max_ns)


def test_device_with_four_planes_opens_in_quad_mode(quad_dev):
    assert quad_dev.geo.nplanes == 4
    assert quad_dev.geo.mpos & MPOS_QUAD_PLANE
    assert quad_dev.pmode == PMode.QUAD


def test_device_with_one_plane_opens_in_single_mode(make_machine):
    dev = Device.open(make_machine(geometry=Geometry.small(nplanes=1)))
    assert dev.geo.nplanes == 1
    assert dev.geo.mpos == 0
    assert dev.pmode == PMode.SNGL


def test_device_driver_sees_the_open_channel_pci_ids_and_nvme_1_2(dev):
    drv = dev.driver
    assert (drv.vendor, drv.device_id) == (PCI_VENDOR_ID, PCI_DEVICE_ID)
    assert drv.version == 0x00010200
    assert drv.id_ctrl.vid == 0x1D1D


@pytest.mark.parametrize("nblocks,npages", [(6, 16), (8, 12)])
def test_device_reports_non_power_of_two_geometry(make_machine, nblocks, npages):
    dev = Device.open(make_machine(geometry=Geometry.small(nblocks=nblocks, npages=npages)))
    assert (dev.geo.nblocks, dev.geo.npages) == (nblocks, npages)


def test_device_open_refuses_a_device_in_appnvm_mode(make_machine):
    with pytest.raises(NotOpenChannel):
        Device.open(make_machine(lnvm=0))


def test_device_close_shuts_the_controller_down(machine, dev):
    dev.close()
    shst = (machine.reg_read32(Reg.CSTS) >> CSTS.SHST_SHIFT) & 3
    assert shst == SHST.COMPLETE


def test_device_close_after_the_machine_is_gone_is_harmless(make_machine):
    m = make_machine()
    dev = Device.open(m)
    m.close()
    dev.close()
