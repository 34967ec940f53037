"""Media in a disk file (volt=0): data, OOB, NAND state and bad block tables survive a
close and reopen of the machine."""
import pytest

from oxemu import Geometry, Machine, probe_geometry
from oxhost.lightnvm import Addr, BlockState, Device, NvmError, buf_diff

from tests.helpers import block_planes, page_addrs, stamp_meta, stamp_sectors


def _reopen(path, geometry=None):
    m = Machine(volt=0, disk=str(path), geometry=geometry or probe_geometry(str(path)))
    return m, Device.open(m)


def test_persistence_data_oob_and_bbt_survive_close_and_reopen(tmp_path):
    path = tmp_path / "ox.disk"
    geo = Geometry.small()
    pages = [page_addrs(1, 0, 4, pg, 2) for pg in range(3)]
    addrs = [a for p in pages for a in p]
    data, meta = stamp_sectors(addrs, 21), stamp_meta(addrs)
    with Machine(volt=0, disk=str(path), geometry=geo) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(1, 0, 4, 2))
        dev.addr_write(addrs, data, meta=meta)
        dev.bbt_mark([Addr(0, 1, pl=1, blk=7)], BlockState.BAD)
        dev.bbt_mark([Addr(1, 1, pl=0, blk=2)], BlockState.GRWN_BAD)
        dev.close()
    assert probe_geometry(str(path)) == geo
    m, dev = _reopen(path)
    with m:
        got, got_meta = dev.addr_read(addrs, with_meta=True)
        assert buf_diff(got, data) == 0 and buf_diff(got_meta, meta) == 0
        t = dev.bbt_get(Addr(0, 1))
        assert t.state(7, 1) == BlockState.BAD and t.tfact == 1
        t = dev.bbt_get(Addr(1, 1))
        assert t.state(2, 0) == BlockState.GRWN_BAD and t.tgrown == 1


def test_persistence_keeps_each_blocks_write_pointer(tmp_path):
    path = tmp_path / "ox.disk"
    with Machine(volt=0, disk=str(path), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 0, 1, 2))
        p0 = page_addrs(0, 0, 1, 0, 2)
        dev.addr_write(p0, stamp_sectors(p0))
    m, dev = _reopen(path)
    with m:
        with pytest.raises(NvmError) as ei:            # page 0 is still programmed
            dev.addr_write(p0, stamp_sectors(p0))
        assert ei.value.status == 0x40FF
        p1 = page_addrs(0, 0, 1, 1, 2)
        dev.addr_write(p1, stamp_sectors(p1, 3))        # page 1 is next in line
        with pytest.raises(NvmError) as ei:
            dev.addr_read(page_addrs(0, 0, 1, 2, 2))
        assert ei.value.status == 0x42FF


def test_persistence_survives_without_a_clean_driver_shutdown(tmp_path):
    """Machine.close alone (no CC.SHN from the host) still leaves the data on disk."""
    path = tmp_path / "ox.disk"
    p0 = page_addrs(1, 1, 6, 0, 2)
    data = stamp_sectors(p0, 4)
    m = Machine(volt=0, disk=str(path), geometry=Geometry.small())
    dev = Device.open(m)
    dev.addr_erase(block_planes(1, 1, 6, 2))
    dev.addr_write(p0, data)
    m.close()
    m, dev = _reopen(path)
    with m:
        assert buf_diff(dev.addr_read(p0)[0], data) == 0


def test_persistence_volatile_media_leave_no_file_and_forget(tmp_path, make_machine):
    path = tmp_path / "never.disk"
    m = make_machine(volt=1, disk=str(path))
    dev = Device.open(m)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p0 = page_addrs(0, 0, 1, 0, 2)
    dev.addr_write(p0, stamp_sectors(p0))
    m.close()
    assert not path.exists()
    dev2 = Device.open(make_machine(volt=1))
    with pytest.raises(NvmError) as ei:
        dev2.addr_read(p0)
    assert ei.value.status == 0x42FF
