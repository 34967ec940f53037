"""Chunk state lives on the media: it survives a clean stop and a power cut consistently
with the data (a unit a cut tore is consumed on every plane, a reset a cut interrupted is
finished), and media written through one interface is refused by the other."""
import os

import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine, StoreError, format_media
from oxemu.wire import ChunkState, Interface, MediaMode, TargetKind
from oxhost.driver import DriverError
from oxhost.lightnvm import Device
from oxhost.lightnvm2 import ChunkAddr, Device20, NvmError

from .conftest import SECTOR, chunk_lbas, fill, pattern

UNRECOVERED, UNWRITTEN = 0x4281, 0x4287


def _open(disk, faults=None, spec="2.0"):
    m = Machine(lnvm=1, volt=0, disk=disk, geometry=Geometry.small(), faults=faults, spec=spec)
    return m, Device20.open(m)


def test_chunk_report_and_data_survive_a_clean_stop(tmp_path):
    disk = str(tmp_path / "c.disk")
    m, dev = _open(disk)
    g = dev.geo
    closed = fill(dev, 0, 0, 0, g.nsectr, seed=1)
    fill(dev, 1, 1, 2, 3 * g.ws_min)
    fill(dev, 0, 1, 1, g.nsectr)
    dev.erase([ChunkAddr(0, 1, 1)])
    before = dev.rprt()
    dev.close()
    m.close()
    m, dev = _open(disk)
    try:
        assert dev.rprt().tobytes() == before.tobytes()
        assert (dev.read(closed)[0] == pattern(closed, 1)).all()
    finally:
        dev.close()
        m.close()


def test_a_unit_a_power_cut_tore_between_planes_is_consumed_on_every_plane(tmp_path):
    disk = str(tmp_path / "c.disk")
    faults = Faults()
    m, dev = _open(disk, faults)
    g = dev.geo
    first = fill(dev, 0, 0, 5, g.ws_min, seed=2)                  # unit 0: 2 programs
    faults.power_cut_after = m.stats()["media_ops"]               # the next program is torn: unit 1, plane 0
    lbas = chunk_lbas(dev, 0, 0, 5, g.ws_min, g.ws_min)
    with pytest.raises(DriverError):
        dev.write(lbas, pattern(lbas, 3))
    m.close()                                                      # the plug
    faults.power_cut_after = None
    m, dev = _open(disk, faults)
    try:
        assert dev.rprt(ChunkAddr(0, 0, 5), 1)["wp"][0] == 2 * g.ws_min      # planes agree, past the torn unit
        assert m.device.mode.counters["settled_chunks"] == 1
        fill(dev, 0, 0, 5, g.nsectr - 2 * g.ws_min, start=2 * g.ws_min)
        assert (dev.read(first)[0] == pattern(first, 2)).all()
        with pytest.raises(NvmError) as ei:
            dev.read(lbas)
        assert ei.value.status == UNRECOVERED and ei.value.mask.all()   # never stale, empty or zero
    finally:
        dev.close()
        m.close()


def test_a_reset_a_power_cut_interrupted_is_finished_at_power_on(tmp_path):
    disk = str(tmp_path / "c.disk")
    faults = Faults()
    m, dev = _open(disk, faults)
    g = dev.geo
    fill(dev, 1, 0, 3, g.nsectr)
    faults.power_cut_after = m.stats()["media_ops"] + 1            # plane 0 erased, plane 1 not
    with pytest.raises(DriverError):
        dev.erase([ChunkAddr(1, 0, 3)])
    m.close()
    faults.power_cut_after = None
    m, dev = _open(disk, faults)
    try:
        d = dev.rprt(ChunkAddr(1, 0, 3), 1)[0]
        assert (d["cs"], d["wp"]) == (ChunkState.FREE, 0)
        assert m.erase_counts()[1 * 2 + 0, 3] == 1                   # both planes erased once
        fill(dev, 1, 0, 3, g.nsectr)
    finally:
        dev.close()
        m.close()


def _sha(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("written,opened", [("1.2", "2.0"), ("2.0", "1.2")])
def test_media_of_one_interface_is_refused_by_the_other_in_one_line_byte_identical(tmp_path, written, opened):
    disk = str(tmp_path / "c.disk")
    with Machine(lnvm=1, volt=0, disk=disk, geometry=Geometry.small(), spec=written) as m:
        if written == "2.0":
            dev = Device20.open(m)
            fill(dev, 0, 0, 0, dev.geo.ws_min)
        else:
            dev = Device.open(m)
            from oxhost.lightnvm import Addr
            dev.addr_erase([Addr(0, 0, pl=p, blk=1) for p in range(2)])
        dev.close()
    before = _sha(disk)
    with pytest.raises(StoreError) as ei:
        Machine(lnvm=1, volt=0, disk=disk, geometry=Geometry.small(), spec=opened)
    msg = str(ei.value)
    assert "\n" not in msg and f"through interface {opened}" in msg and "ox format" in msg
    assert _sha(disk) == before


def test_format_for_2_0_labels_the_media_and_a_1_2_device_refuses_it(tmp_path):
    disk = str(tmp_path / "c.disk")
    label = format_media(disk, geometry=Geometry.small(), mode=MediaMode.OPEN_CHANNEL, target=TargetKind.PBLK,
                         interface=Interface.OCSSD_2_0)
    assert label.interface == Interface.OCSSD_2_0
    before = _sha(disk)
    with pytest.raises(StoreError):
        Machine(lnvm=1, volt=0, disk=disk, geometry=Geometry.small(), spec="1.2")
    assert _sha(disk) == before and os.path.getsize(disk) > 0
