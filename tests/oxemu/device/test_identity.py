"""Identify controller/namespace and the LightNVM 0xE2 identity, checked as raw bytes at
the offsets the Linux driver reads (nvme_nvm_id12), not through our own ctypes layout."""
import struct

import pytest

from oxemu import Geometry
from oxemu.volt import NandTiming
from oxemu.wire import AdminOpc, Cns
from oxhost.lightnvm import Device

from tests.helpers import INVALID_FIELD


def _identity(dev) -> bytes:
    drv = dev.driver
    buf = drv.pool.alloc(4096)
    buf.array[:] = 0xCC                                  # every byte must be written
    c = drv.admin(AdminOpc.NVM_IDENTITY, nsid=1, prp1=buf.addr)
    assert c.status == 0
    raw = bytes(buf.array)
    buf.free()
    return raw


def test_identity_header_and_ppaf_at_kernel_offsets(default_dev):
    raw = _identity(default_dev)
    assert len(raw) == 4096
    assert raw[0] == 1                                   # ver_id
    assert raw[2] == 1                                   # cgrps
    assert struct.unpack_from("<I", raw, 4)[0] == 0      # cap
    # ppaf: ch_off, ch_len, lun_off, lun_len, pln_off, pln_len, blk_off, blk_len,
    #       pg_off, pg_len, sect_off, sect_len (SPEC 5)
    assert struct.unpack_from("<12B", raw, 12) == (17, 3, 15, 2, 2, 1, 10, 5, 3, 7, 0, 2)


def test_identity_group_geometry_at_kernel_offsets(default_dev):
    raw = _identity(default_dev)
    assert (raw[260], raw[261], raw[262]) == (8, 4, 2)          # num_ch, num_lun, num_pln
    assert struct.unpack_from("<H", raw, 264)[0] == 32           # num_blk
    assert struct.unpack_from("<H", raw, 266)[0] == 128          # num_pg
    assert struct.unpack_from("<H", raw, 268)[0] == 16384        # fpg_sz
    assert struct.unpack_from("<H", raw, 270)[0] == 4096         # csecs
    assert struct.unpack_from("<H", raw, 272)[0] == 16           # sos
    assert struct.unpack_from("<I", raw, 300)[0] == 0x020202     # mpos: dual plane


def test_identity_timings_at_kernel_offsets_come_from_the_timing_model(default_machine, default_dev):
    nand = default_machine.device.volt.timing.nand
    raw = _identity(default_dev)
    assert struct.unpack_from("<6I", raw, 276) == (
        nand.t_read_ns, nand.t_read_max_ns, nand.t_prog_ns, nand.t_prog_max_ns,
        nand.t_erase_ns, nand.t_erase_max_ns)
    assert nand == NandTiming()
    assert 20_000 <= nand.t_read_ns <= 100_000                   # peers' range (SPEC 8)
    assert 100_000 <= nand.t_prog_ns <= 1_000_000
    assert 500_000 <= nand.t_erase_ns <= 5_000_000


def test_identity_reserved_bytes_are_zero(default_dev):
    raw = _identity(default_dev)
    assert raw[28:256] == bytes(228)
    assert raw[1216:] == bytes(4096 - 1216)


@pytest.mark.parametrize("geo", [Geometry.small(), Geometry.small(nplanes=4, nchannels=3, nblocks=6),
                                 Geometry.small(nplanes=1, nsectors=2)], ids=["small", "quad", "single"])
def test_identity_follows_the_configured_geometry(make_machine, geo):
    dev = Device.open(make_machine(geometry=geo))
    raw = _identity(dev)
    assert (raw[260], raw[261], raw[262]) == (geo.nchannels, geo.nluns, geo.nplanes)
    assert struct.unpack_from("<4H", raw, 264) == (geo.nblocks, geo.npages, geo.page_nbytes, geo.sector_nbytes)
    f = geo.ppaf
    assert struct.unpack_from("<12B", raw, 12) == (*f["ch"], *f["lun"], *f["pl"], *f["blk"], *f["pg"], *f["sec"])
    mpos = struct.unpack_from("<I", raw, 300)[0]
    assert mpos == {1: 0, 2: 0x020202, 4: 0x040404 | 0x020202}[geo.nplanes]


def test_identify_controller_reports_vendor_1d1d_and_the_serial_parameter(open_dev):
    dev = open_dev(serial="OX-TEST-0042")
    raw = dev.driver.identify(Cns.CONTROLLER)
    assert struct.unpack_from("<H", raw, 0)[0] == 0x1D1D           # vid
    assert raw[4:24] == b"OX-TEST-0042".ljust(20)                   # sn, space padded
    assert raw[24:64].rstrip(b" \0")                                # some model number
    assert raw[512] == 0x66 and raw[513] == 0x44                    # sqes, cqes
    assert struct.unpack_from("<I", raw, 516)[0] == 1               # nn: one namespace


def test_identify_controller_serial_is_cut_to_20_bytes(open_dev):
    dev = open_dev(serial="S" * 25)
    assert dev.driver.identify(Cns.CONTROLLER)[4:24] == b"S" * 20


def test_identify_namespace_flags_lightnvm_in_vs0(dev):
    raw = dev.driver.identify(Cns.NAMESPACE, nsid=1)
    assert raw[384] == 1                                            # vs[0]
    nsze = struct.unpack_from("<Q", raw, 0)[0]
    assert nsze == dev.geo.nsectors_total
    assert raw[128 + 2] == 12                                       # lbaf[0].ds: 4 KiB


def test_identify_namespace_of_an_unknown_nsid_fails_with_0x400B(dev):
    buf = dev.driver.pool.alloc(4096)
    for nsid in (0, 2, 0xFFFFFFFF):
        assert dev.driver.admin(AdminOpc.IDENTIFY, nsid=nsid, prp1=buf.addr, cdw10=Cns.NAMESPACE).status == 0x400B


def test_identify_with_an_unknown_cns_fails_with_0x0002(dev):
    buf = dev.driver.pool.alloc(4096)
    assert dev.driver.admin(AdminOpc.IDENTIFY, prp1=buf.addr, cdw10=0x55).status == INVALID_FIELD


def test_identify_active_namespace_list_names_namespace_1(dev):
    buf = dev.driver.pool.alloc(4096)
    assert dev.driver.admin(AdminOpc.IDENTIFY, prp1=buf.addr, cdw10=Cns.NS_ACTIVE_LIST).status == 0
    assert struct.unpack_from("<2I", bytes(buf.array), 0) == (1, 0)
