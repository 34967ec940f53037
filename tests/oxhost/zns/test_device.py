"""The libzbd-style library: zone ranges in LBAs, reports over many commands, misuse refused
before anything reaches the device."""
import numpy as np
import pytest

from oxemu import Geometry, ZnsParams
from oxemu.wire import ZoneReportFilter, ZoneState
from oxhost.zns import ZoneRangeError, ZonedDevice
from oxhost.zns import device as zdevice

GEO = Geometry.small(nblocks=4, npages=4)      # 8 zones of 64 LBAs


@pytest.fixture
def dev(make_machine):
    d = ZonedDevice.open(make_machine(lnvm=0, spec="zns", geometry=GEO))
    yield d
    d.close()


def test_zbd_info_and_zone_of_index(dev):
    i = dev.info
    assert (i.nr_zones, i.zone_sectors, i.nr_lblocks, i.zone_size) == (8, 64, 512, 64 * 4096)
    z = dev.zone(5)
    assert (z.index, z.start, z.len, z.capacity, z.wp, z.cond) == (5, 320, 64, 48, 320, ZoneState.EMPTY)


def test_zbd_operations_take_whole_zones_and_refuse_others_unsent(dev):
    sent = dev.driver.stats["commands"]
    for bad in ((3, 64), (64, 10), (448, 128), (-64, 64)):
        with pytest.raises(ZoneRangeError):
            dev.reset_zones(*bad)
    with pytest.raises(ZoneRangeError):
        dev.open_zones(64, 0)                    # a length of 0 means every zone: LBA 0
    for bad in ((512, 1), (0, 0)):
        with pytest.raises(ZoneRangeError):
            dev.read(*bad)
    with pytest.raises(ZoneRangeError):
        dev.write(0, np.zeros(100, np.uint8))    # not whole LBAs
    with pytest.raises(ZoneRangeError):
        dev.write(0, np.zeros(4096, np.uint8), np.zeros(15, np.uint8))
    with pytest.raises(ZoneRangeError):
        dev.append(8, np.zeros(4096, np.uint8))
    assert dev.driver.stats["commands"] == sent
    dev.finish_zones(64, 3 * 64)                 # zones 1-3, one command each
    assert [z.cond for z in dev.report_zones(0, 4 * 64)] == [ZoneState.EMPTY] + [ZoneState.FULL] * 3


def test_zbd_report_spans_several_commands_when_zones_outnumber_the_buffer(make_machine, monkeypatch):
    monkeypatch.setattr(zdevice, "REPORT_NBYTES", 64 + 3 * 64)          # three descriptors a command
    d = ZonedDevice.open(make_machine(lnvm=0, spec="zns", geometry=GEO))
    try:
        d.finish_zones(2 * 64, 64)
        d.finish_zones(6 * 64, 64)
        before = d.counters["reports"]
        assert [z.index for z in d.report_zones()] == list(range(8))
        assert d.counters["reports"] - before == 3
        assert [z.index for z in d.report_zones(ro=ZoneReportFilter.FULL)] == [2, 6]
        assert [z.index for z in d.report_zones(64, 3 * 64)] == [1, 2, 3]
    finally:
        d.close()


def test_zbd_limits_come_from_identify(make_machine):
    d = ZonedDevice.open(make_machine(lnvm=0, spec="zns", geometry=GEO, zns=ZnsParams(max_open=3, max_active=5)))
    try:
        assert (d.info.max_nr_open_zones, d.info.max_nr_active_zones) == (3, 5)
    finally:
        d.close()
