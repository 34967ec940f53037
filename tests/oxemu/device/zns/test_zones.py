"""Every zone state transition and every zone error of ZNS 1.1, through the bus."""
import ctypes

import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine, ZnsParams, format_media
from oxemu.volt import StoreError
from oxemu.device.zns.layout import MAX_SKIPS
from oxemu.wire import (CSI_ZNS, AdminOpc, Cns, IdNs, IdNsZns, NvmOpc, Status, ZoneAction, ZoneAttr,
                        ZoneReportFilter, ZoneState, ZONE_MGMT_SELECT_ALL, ZONE_REPORT_PARTIAL)
from oxhost.nvme.admin import AdminStatusError, admin_read
from oxhost.zns import NotZoned, ZonedDevice

from .conftest import GEO, SECTOR, meta_of, stamp, status_of, versions

ZS = 64                  # zone size of GEO: 2 LUNs x 4 pages x 8 sectors
ZCAP = 48                # less one write unit per LUN
E, IO, EO, C, F, RO, OFF = (ZoneState.EMPTY, ZoneState.IMPLICITLY_OPEN, ZoneState.EXPLICITLY_OPEN,
                            ZoneState.CLOSED, ZoneState.FULL, ZoneState.READ_ONLY, ZoneState.OFFLINE)


def cond(dev, z):
    return dev.zone(z).cond


def write(dev, z, n, version=1, at=None):
    lba = z * ZS + (dev.zone(z).written if at is None else at)
    lbas = np.arange(lba, lba + n)
    dev.write(lba, stamp(lbas, version), meta_of(lbas, version))
    return lbas


# ---------------------------------------------------------------- identify and report
def test_zns_identify_names_zones_metadata_and_limits(zd):
    dev = zd.dev
    info = dev.info
    assert (info.nr_zones, info.zone_sectors, info.md_size, info.write_unit) == (8, ZS, 16, 8)
    assert (info.max_nr_open_zones, info.max_nr_active_zones) == (14, 14)
    ns = IdNs.from_buffer_copy(dev.driver.identify(Cns.NAMESPACE, nsid=1))
    assert ns.nsze == 8 * ZS and ns.lbaf[0].ds == 12 and ns.lbaf[0].ms == 16 and ns.nows == 7
    raw = admin_read(dev.driver, "ns id descriptors", AdminOpc.IDENTIFY, 4096, nsid=1, cdw10=Cns.NS_ID_DESCRIPTORS)
    assert raw[:5] == bytes((4, 1, 0, 0, CSI_ZNS))


def test_zns_identify_of_another_command_set_is_refused(zoned):
    dev = zoned(params=ZnsParams(max_open=0, max_active=0)).dev
    z = IdNsZns.from_buffer_copy(admin_read(dev.driver, "zns", AdminOpc.IDENTIFY, 4096, nsid=1,
                                            cdw10=Cns.CS_NAMESPACE, cdw11=CSI_ZNS << 24))
    assert z.mar == z.mor == 0xFFFF_FFFF and z.lbafe[0].zsze == ZS and z.ozcs == 1
    with pytest.raises(AdminStatusError) as e:
        admin_read(dev.driver, "csi 1", AdminOpc.IDENTIFY, 4096, nsid=1, cdw10=Cns.CS_NAMESPACE, cdw11=1 << 24)
    assert e.value.status & 0xFF == Status.INVALID_FIELD


def test_zns_library_refuses_a_device_that_is_not_zoned(make_machine):
    m = make_machine(lnvm=0)
    with pytest.raises(NotZoned):
        ZonedDevice.open(m)


def test_zns_fresh_report_lists_every_zone_empty_at_its_start(zd):
    zones = zd.dev.report_zones()
    assert [z.index for z in zones] == list(range(8))
    assert all(z.cond == E and z.wp == z.start and z.capacity == ZCAP and z.len == ZS for z in zones)


def test_zns_report_partial_bit_counts_what_fits_and_filters_select(zd):
    write(zd.dev, 2, 3)
    zd.dev.finish_zones(5 * ZS, ZS)
    hdr = lambda cdw13, nbytes: _report(zd, 0, cdw13, nbytes)     # noqa: E731
    n, descs = hdr(ZONE_REPORT_PARTIAL, 64 + 2 * 64)
    assert n == 2 and [d[1] for d in descs] == [0, ZS]            # two fit, two counted
    n, descs = hdr(0, 64 + 2 * 64)
    assert n == 8 and len(descs) == 2                            # every match counted, two returned
    n, descs = hdr(ZoneReportFilter.FULL << 8, 4096)
    assert n == 1 and descs[0][1] == 5 * ZS
    n, descs = hdr(ZoneReportFilter.IMPLICITLY_OPEN << 8, 4096)
    assert n == 1 and descs[0][1] == 2 * ZS and descs[0][2] == 2 * ZS + 3
    assert [z.index for z in zd.dev.report_zones(ro=ZoneReportFilter.EMPTY)] == [0, 1, 3, 4, 6, 7]


def _report(zd, slba, cdw13, nbytes):
    drv = zd.dev.driver
    buf = drv.pool.alloc(nbytes)
    try:
        p1, p2 = drv.prps(1, 0, buf.addr, nbytes)
        c = drv.submit(1, [(NvmOpc.ZONE_MGMT_RECV, 0, 1, 0, p1, p2, slba, 0, nbytes // 4 - 1, cdw13, 0, 0)])[0]
        assert c.status == 0
        raw = bytes(buf.array[:nbytes])
    finally:
        buf.free()
    n = int.from_bytes(raw[:8], "little")
    descs = []
    for i in range((nbytes - 64) // 64):
        d = raw[64 + 64 * i:128 + 64 * i]
        if d[1]:
            descs.append((d[1] >> 4, int.from_bytes(d[16:24], "little"), int.from_bytes(d[24:32], "little")))
    return n, descs


@pytest.mark.parametrize("cdw13,nbytes,status", [
    (ZoneReportFilter.OFFLINE + 1 << 8, 4096, Status.INVALID_FIELD),      # no such filter
    (1, 4096, Status.INVALID_FIELD),                                     # extended report: no extensions
    (0, 32, Status.INVALID_FIELD),                                       # shorter than the header
])
def test_zns_report_refuses_bad_fields(zd, cdw13, nbytes, status):
    assert zd.raw(NvmOpc.ZONE_MGMT_RECV, cdw12=nbytes // 4 - 1, cdw13=cdw13, nbytes=max(nbytes, 64))[0] == status


def test_zns_report_beyond_the_namespace_is_lba_range(zd):
    assert zd.raw(NvmOpc.ZONE_MGMT_RECV, slba=8 * ZS, cdw12=1023)[0] == Status.LBA_RANGE


# ---------------------------------------------------------------- writes
def test_zns_write_opens_implicitly_and_reads_back_with_metadata(zd):
    dev = zd.dev
    lbas = write(dev, 1, 13, version=4)
    z = dev.zone(1)
    assert z.cond == IO and z.wp == ZS + 13
    data, meta = dev.read(ZS, 13, with_meta=True)
    assert (versions(data, lbas) == 4).all() and (meta == meta_of(lbas, 4)).all()


def test_zns_write_not_at_the_write_pointer_is_zone_invalid_write(zd):
    write(zd.dev, 0, 5)
    for at in (0, 4, 6):
        assert status_of(write, zd.dev, 0, 1, at=at) == Status.ZONE_INVALID_WRITE
    assert zd.dev.zone(0).wp == 5


def test_zns_write_past_the_zone_capacity_is_zone_boundary_error(zd):
    write(zd.dev, 0, ZCAP - 4)
    assert status_of(write, zd.dev, 0, 5) == Status.ZONE_BOUNDARY_ERROR
    write(zd.dev, 0, 4)
    assert cond(zd.dev, 0) == F                                  # written to its capacity: full


def test_zns_write_to_a_full_zone_is_zone_full(zd):
    zd.dev.finish_zones(3 * ZS, ZS)
    assert status_of(write, zd.dev, 3, 1, at=0) == Status.ZONE_FULL


def test_zns_reads_past_the_write_pointer_and_the_capacity_are_zeros_and_cross_zones(zd):
    lbas = write(zd.dev, 0, ZCAP)
    write(zd.dev, 1, 3, version=2)
    data, _ = zd.dev.read(0, ZS + 8)                             # across the zone boundary (RAZB)
    v = versions(data, np.arange(ZS + 8))
    assert (v[:ZCAP] == 1).all() and (v[ZCAP:ZS] == 0).all() and (v[ZS:ZS + 3] == 2).all() and (v[ZS + 3:] == 0).all()
    assert lbas[-1] == ZCAP - 1


def test_zns_writes_out_of_range_and_oversized_are_refused(zd):
    assert zd.raw(NvmOpc.WRITE, slba=8 * ZS - 1, nlb=2)[0] == Status.LBA_RANGE
    assert zd.raw(NvmOpc.WRITE, slba=0, nlb=257, nbytes=4096)[0] == Status.INVALID_FIELD
    assert zd.raw(0x09)[0] == Status.INVALID_OPCODE                  # no dataset management on zones


# ---------------------------------------------------------------- zone append
def test_zns_append_returns_the_lba_it_wrote_at(zd):
    dev = zd.dev
    write(dev, 2, 3)
    lba = dev.append(2, stamp(np.arange(2 * ZS + 3, 2 * ZS + 8), 5))
    assert lba == 2 * ZS + 3 and dev.zone(2).wp == 2 * ZS + 8
    assert (versions(dev.read(lba, 5)[0], np.arange(lba, lba + 5)) == 5).all()


def test_zns_append_not_at_a_zone_start_is_invalid_field(zd):
    assert zd.raw(NvmOpc.ZONE_APPEND, slba=3)[0] == Status.INVALID_FIELD
    assert zd.raw(NvmOpc.ZONE_APPEND, slba=8 * ZS)[0] == Status.LBA_RANGE


def test_zns_append_past_the_capacity_is_zone_boundary_error_and_to_a_full_zone_zone_full(zd):
    write(zd.dev, 0, ZCAP - 2)
    assert status_of(zd.dev.append, 0, np.zeros(3 * SECTOR, np.uint8)) == Status.ZONE_BOUNDARY_ERROR
    zd.dev.append(0, np.zeros(2 * SECTOR, np.uint8))
    assert cond(zd.dev, 0) == F
    assert status_of(zd.dev.append, 0, np.zeros(SECTOR, np.uint8)) == Status.ZONE_FULL


# ---------------------------------------------------------------- zone actions
def test_zns_open_close_finish_reset_walk_the_state_machine(zd):
    dev = zd.dev
    r = lambda z: (z * ZS, ZS)                                   # noqa: E731
    dev.open_zones(*r(0))
    assert cond(dev, 0) == EO
    dev.open_zones(*r(0))                                        # open again: still explicitly open
    dev.close_zones(*r(0))
    assert cond(dev, 0) == C and dev.zone(0).wp == 0             # closed, nothing written
    dev.close_zones(*r(0))                                       # closing a closed zone: nothing happens
    write(dev, 0, 2)
    assert cond(dev, 0) == IO                                    # a write opens it again, implicitly
    dev.open_zones(*r(0))
    assert cond(dev, 0) == EO                                    # implicit -> explicit
    dev.finish_zones(*r(0))
    assert cond(dev, 0) == F and dev.zone(0).wp is None
    dev.finish_zones(*r(0))
    dev.reset_zones(*r(0))
    assert cond(dev, 0) == E and dev.zone(0).wp == 0
    dev.reset_zones(*r(0))                                       # resetting an empty zone: nothing happens
    dev.finish_zones(*r(1))                                      # empty -> full
    assert cond(dev, 1) == F
    write(dev, 2, 9)
    dev.close_zones(*r(2))
    dev.finish_zones(*r(2))                                      # closed -> full
    assert cond(dev, 2) == F
    assert (versions(dev.read(2 * ZS, 9)[0], np.arange(2 * ZS, 2 * ZS + 9)) == 1).all()


@pytest.mark.parametrize("setup,action", [
    ("empty", "close"), ("full", "open"), ("full", "close"), ("empty", "offline"), ("full", "offline"),
    ("open", "offline"),
])
def test_zns_action_not_allowed_from_the_state_is_invalid_zone_state_transition(zd, setup, action):
    dev = zd.dev
    if setup == "full":
        dev.finish_zones(0, ZS)
    elif setup == "open":
        dev.open_zones(0, ZS)
    assert status_of(getattr(dev, f"{action}_zones"), 0, ZS) == Status.ZONE_INVALID_TRANSITION


@pytest.mark.parametrize("slba,cdw13,status", [
    (3, ZoneAction.OPEN, Status.INVALID_FIELD),                  # not a zone's first LBA
    (8 * ZS, ZoneAction.RESET, Status.LBA_RANGE),                # beyond the namespace
    (0, 0x06, Status.INVALID_FIELD),                             # no such action
    (0, ZoneAction.SET_ZONE_DESCRIPTOR_EXTENSION, Status.INVALID_FIELD),   # no extensions
])
def test_zns_zone_management_send_refuses_bad_fields(zd, slba, cdw13, status):
    assert zd.raw(NvmOpc.ZONE_MGMT_SEND, slba=slba, cdw12=0, cdw13=cdw13)[0] == status


def test_zns_select_all_acts_on_the_zones_its_action_applies_to(zd):
    dev = zd.dev
    write(dev, 0, 3)
    dev.open_zones(1 * ZS, ZS)
    write(dev, 2, 5)
    dev.close_zones(2 * ZS, ZS)
    dev.finish_zones(3 * ZS, ZS)
    dev.close_zones(0, 0)                                        # select all: the open ones
    assert [cond(dev, z) for z in range(5)] == [C, C, C, F, E]
    dev.open_zones(0, 0)                                         # the closed ones
    assert [cond(dev, z) for z in range(5)] == [EO, EO, EO, F, E]
    dev.finish_zones(0, 0)                                       # open and closed
    assert [cond(dev, z) for z in range(5)] == [F, F, F, F, E]
    dev.reset_zones(0, 0)
    assert all(z.cond == E for z in dev.report_zones())
    assert zd.raw(NvmOpc.ZONE_MGMT_SEND, slba=3, cdw12=0, cdw13=ZoneAction.RESET | ZONE_MGMT_SELECT_ALL)[0] == 0


# ---------------------------------------------------------------- resources
def test_zns_max_open_refuses_an_explicit_open_and_closes_the_oldest_implicit_one(zoned):
    dev = zoned(params=ZnsParams(max_open=2, max_active=3)).dev
    dev.open_zones(0, ZS)
    dev.open_zones(ZS, ZS)
    assert status_of(dev.open_zones, 2 * ZS, ZS) == Status.ZONE_TOO_MANY_OPEN
    assert status_of(write, dev, 2, 1) == Status.ZONE_TOO_MANY_OPEN        # explicit ones are never closed
    dev.close_zones(0, ZS)
    dev.reset_zones(0, ZS)
    write(dev, 2, 1)                                                       # implicitly open: 2
    dev.close_zones(ZS, ZS)
    dev.reset_zones(ZS, ZS)
    write(dev, 3, 1)
    assert [cond(dev, z) for z in (2, 3)] == [IO, IO]
    write(dev, 0, 1)                                                       # a third: the oldest closes
    assert [cond(dev, z) for z in (0, 2, 3)] == [IO, C, IO]
    assert status_of(write, dev, 4, 1) == Status.ZONE_TOO_MANY_ACTIVE      # 3 active: 0, 2 (closed), 3


def test_zns_max_active_counts_closed_zones_until_they_are_finished(zoned):
    dev = zoned(params=ZnsParams(max_open=0, max_active=2)).dev
    write(dev, 0, 1)
    write(dev, 1, 1)
    dev.close_zones(0, 0)
    assert status_of(dev.open_zones, 2 * ZS, ZS) == Status.ZONE_TOO_MANY_ACTIVE
    dev.finish_zones(0, ZS)
    dev.open_zones(2 * ZS, ZS)
    assert [cond(dev, z) for z in range(3)] == [F, C, EO]


# ---------------------------------------------------------------- media failures
def _unit_pages(zd, z, units):
    """(ch, lun, blk, pg) of zone z's physical units."""
    return {zd.mode.lay.unit_at(z, p) for p in units}


def test_zns_failed_programs_are_moved_past_using_spare_units(zoned):
    zd = zoned()
    zd.restart(faults=Faults(program_fail=_unit_pages(zd, 0, [1])))
    lbas = write(zd.dev, 0, ZCAP)                                # the whole capacity despite the failure
    assert cond(zd.dev, 0) == F and not zd.dev.zone(0).attrs
    assert (versions(zd.dev.read(0, ZCAP)[0], lbas) == 1).all()
    assert zd.m.stats()["ftl"]["media"]["units_skipped"] == 1


def test_zns_zone_out_of_spare_units_is_finished_by_the_controller_keeping_its_data(zoned):
    zd = zoned()
    zd.restart(faults=Faults(program_fail=_unit_pages(zd, 0, [0, 1, 2])))
    lbas = write(zd.dev, 0, 3 * 8)                               # 2 spares: the third failure ends it
    assert status_of(write, zd.dev, 0, 3 * 8) == Status.WRITE_FAULT
    z = zd.dev.zone(0)
    assert z.cond == F and z.attrs & ZoneAttr.ZFC
    assert (versions(zd.dev.read(0, 24)[0], lbas) == 1).all()
    zd.dev.reset_zones(0, ZS)                                    # a reset makes it usable again
    assert zd.dev.zone(0).attrs == 0


def test_zns_zone_whose_media_fails_too_often_goes_read_only_then_offline(zoned):
    geo = Geometry.small(nblocks=2, npages=16)                   # zones of 32 units; capacity one unit
    zd = zoned(geometry=geo, params=ZnsParams(zone_capacity_bytes=8 * SECTOR))
    zd.restart(faults=Faults(program_fail=_unit_pages(zd, 0, range(MAX_SKIPS + 1))))
    assert status_of(write, zd.dev, 0, 8) == Status.WRITE_FAULT  # a skip more than the record holds
    assert cond(zd.dev, 0) == RO
    assert status_of(write, zd.dev, 0, 1, at=0) == Status.ZONE_READ_ONLY
    assert status_of(zd.dev.reset_zones, 0, 256) == Status.ZONE_INVALID_TRANSITION
    zd.dev.offline_zones(0, 0)                                   # select all: the read-only ones
    assert cond(zd.dev, 0) == OFF
    assert status_of(zd.dev.read, 0, 1) == Status.ZONE_OFFLINE
    assert status_of(write, zd.dev, 0, 1, at=0) == Status.ZONE_OFFLINE
    zd.restart()
    assert cond(zd.dev, 0) == OFF                                 # for good


def test_zns_zone_whose_block_is_bad_is_offline(tmp_path):
    geo = GEO
    faults = Faults(factory_bad={(1, 0, 2, 1)})                  # ch 1 lun 0 blk 2: zone 2 * 2 + 0 = 4
    with Machine(lnvm=0, spec="zns", geometry=geo, faults=faults) as m:
        dev = ZonedDevice.open(m)
        assert [z.index for z in dev.report_zones(ro=ZoneReportFilter.OFFLINE)] == [4]
        dev.close()


# ---------------------------------------------------------------- the media it runs on
def test_zns_needs_lnvm_0_and_no_device_ftl():
    with pytest.raises(ValueError, match="lnvm=0"):
        Machine(lnvm=1, spec="zns", geometry=GEO)


def test_zns_refuses_a_version_2_disk_file_untouched_in_one_line(tmp_path):
    from oxemu.volt import store
    path = str(tmp_path / "v2.disk")
    with Machine(lnvm=1, volt=0, disk=path, geometry=GEO):
        pass
    _downgrade_to_v2(path, GEO)
    before = (tmp_path / "v2.disk").read_bytes()
    with pytest.raises(StoreError) as e:
        Machine(lnvm=0, spec="zns", volt=0, disk=path, geometry=GEO)
    assert "version 2" in str(e.value) and "ox format" in str(e.value) and "\n" not in str(e.value)
    assert (tmp_path / "v2.disk").read_bytes() == before
    format_media(path)                                           # format converts it
    assert store.probe_label(path) is not None
    with Machine(lnvm=0, spec="zns", volt=0, disk=path, geometry=GEO):
        pass


def _downgrade_to_v2(path, geo):
    """Rewrite a version-3 file as the version-2 file the build before the NVRAM made."""
    import os
    from oxemu.volt.store import V2Header, VoltHeader, _header_crc, layout
    with open(path, "rb") as f:
        raw = f.read(ctypes.sizeof(VoltHeader))
    h2 = V2Header()
    ctypes.memmove(ctypes.addressof(h2), raw, V2Header.crc.offset)    # the same fields up to the CRC
    h2.version = 2
    h2.file_nbytes = layout(geo, 2)["file_nbytes"]
    h2.crc = _header_crc(h2)
    with open(path, "r+b") as f:
        f.write(bytes(h2).ljust(4096, b"\0"))
        f.truncate(h2.file_nbytes)
    assert os.path.getsize(path) == h2.file_nbytes


def test_zns_read_only_disk_serves_reads_and_reports_refuses_writes(zoned):
    zd = zoned()
    lbas = write(zd.dev, 0, 5)
    zd.stop()
    m = Machine(lnvm=0, spec="zns", volt=0, disk=zd.disk, geometry=GEO, readonly=True)
    try:
        dev = ZonedDevice.open(m)
        assert (versions(dev.read(0, 5)[0], lbas) == 1).all() and dev.zone(0).cond == C
        assert status_of(dev.write, 5, stamp([5], 1)) == Status.NS_WRITE_PROTECTED
        assert status_of(dev.reset_zones, 0, 0) == Status.NS_WRITE_PROTECTED
        dev.close()
    finally:
        m.close()


def test_zns_geometry_that_zones_do_not_divide_is_refused():
    with pytest.raises(ValueError, match="zone_luns"):
        Machine(lnvm=0, spec="zns", geometry=Geometry.small(nchannels=3, nluns=1), zns=ZnsParams(zone_luns=2))


def test_zns_zone_shape_is_recorded_and_another_is_refused_untouched(zoned, tmp_path):
    zd = zoned(params=ZnsParams(zone_capacity_bytes=32 * SECTOR))
    write(zd.dev, 0, 3)
    zd.stop()
    before = (tmp_path / "zns.disk").read_bytes()
    for asked in (ZnsParams(zone_luns=4), ZnsParams(zone_capacity_bytes=40 * SECTOR)):
        with pytest.raises(StoreError) as e:
            Machine(lnvm=0, spec="zns", volt=0, disk=zd.disk, geometry=GEO, zns=asked)
        assert "zone" in str(e.value) and "\n" not in str(e.value)
    assert (tmp_path / "zns.disk").read_bytes() == before
    zd.params = ZnsParams()
    dev = zd.start()                                             # no shape asked: the media's
    assert dev.zone(0).capacity == 32 and dev.zone(0).written == 3
