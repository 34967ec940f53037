"""VOLT disk file (volt=0): created sparse with a versioned, CRC'd header; refused --
and left byte-for-byte untouched -- when it is not ours, corrupt, of another geometry,
or locked by another device."""
import ctypes
import os

import pytest

from oxemu import Geometry, Machine, StoreError, probe_geometry
from oxemu.volt.store import HEADER_NBYTES, MAGIC, VERSION, VoltHeader, _header_crc
from oxhost.lightnvm import Device

from tests.helpers import block_planes, file_digest, page_addrs, stamp_sectors


def _header(path) -> VoltHeader:
    with open(path, "rb") as f:
        return VoltHeader.from_buffer_copy(f.read(ctypes.sizeof(VoltHeader)))


@pytest.fixture
def disk(tmp_path):
    """A valid small-geometry disk file holding one written page."""
    path = tmp_path / "ox.disk"
    with Machine(volt=0, disk=str(path), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 0, 1, 2))
        p = page_addrs(0, 0, 1, 0, 2)
        dev.addr_write(p, stamp_sectors(p))
        dev.close()
    return path


def _poke(path, offset, data: bytes):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _refused(path, geometry=None, match=None):
    before = file_digest(path)
    size = os.path.getsize(path)
    with pytest.raises(StoreError, match=match):
        Machine(volt=0, disk=str(path), geometry=geometry or Geometry.small())
    assert file_digest(path) == before, "a refused disk file was modified"
    assert os.path.getsize(path) == size


def test_store_new_file_is_sparse_with_a_valid_header(disk):
    geo = Geometry.small()
    h = _header(disk)
    assert disk.read_bytes()[:8] == MAGIC
    assert h.version == VERSION and h.header_nbytes == HEADER_NBYTES
    assert (h.nchannels, h.nluns, h.nblocks, h.npages, h.nplanes, h.nsectors) == (2, 2, 8, 16, 2, 4)
    assert h.clean == 1
    st = os.stat(disk)
    assert st.st_size >= geo.data_nbytes + geo.oob_total_nbytes
    assert st.st_blocks * 512 < st.st_size // 8         # sparse: only what was written


def test_store_header_is_marked_dirty_while_open(disk):
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()):
        assert _header(disk).clean == 0
    assert _header(disk).clean == 1


def test_store_probe_geometry_reads_the_header(disk, tmp_path):
    assert probe_geometry(str(disk)) == Geometry.small()
    assert probe_geometry(str(tmp_path / "missing.disk")) is None
    (tmp_path / "empty.disk").write_bytes(b"")
    assert probe_geometry(str(tmp_path / "empty.disk")) is None


@pytest.mark.parametrize("geo", [Geometry(), Geometry.small(nblocks=16), Geometry.small(nplanes=4),
                                 Geometry.small(oob_nbytes=2048)], ids=["default", "blocks", "planes", "oob"])
def test_store_of_another_geometry_is_refused_untouched(disk, geo):
    _refused(disk, geometry=geo, match="geometry")


def test_store_with_bad_magic_is_refused_untouched(disk):
    _poke(disk, 0, b"NOTOX!")
    _refused(disk, match="magic")
    with pytest.raises(StoreError):
        probe_geometry(str(disk))


def test_store_with_a_corrupt_header_is_refused_untouched(disk):
    _poke(disk, VoltHeader.nblocks.offset, (9).to_bytes(4, "little"))     # CRC no longer matches
    _refused(disk, match="corrupt")
    with pytest.raises(StoreError):
        probe_geometry(str(disk))


def _rewrite_header(path, **fields):
    """Change header fields and re-seal the CRC, as a future or foreign build might."""
    h = _header(path)
    for k, v in fields.items():
        setattr(h, k, v)
    h.crc = _header_crc(h)
    _poke(path, 0, bytes(h))


def test_store_of_another_version_is_refused_untouched(disk):
    _rewrite_header(disk, version=VERSION + 1)
    _refused(disk, match="version")


@pytest.mark.parametrize("fields", [dict(nplanes=3), dict(nchannels=0), dict(nsectors=1000)],
                         ids=["3-planes", "no-channels", "oob-overflow"])
def test_store_header_with_an_impossible_geometry_is_a_store_error(disk, fields):
    _rewrite_header(disk, **fields)
    _refused(disk)
    with pytest.raises(StoreError):
        probe_geometry(str(disk))


def test_store_truncated_file_is_refused_untouched(disk):
    with open(disk, "r+b") as f:
        f.truncate(os.path.getsize(disk) // 2)
    _refused(disk, match="truncated|size")


@pytest.mark.parametrize("content", [b"x", b"hello world\n" * 1000, os.urandom(8192)],
                         ids=["one-byte", "text", "random"])
def test_store_foreign_file_is_refused_untouched(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    _refused(path)


def test_store_second_machine_on_a_locked_file_is_refused(disk, make_machine):
    m = make_machine(volt=0, disk=str(disk))
    with pytest.raises(StoreError, match="in use"):
        Machine(volt=0, disk=str(disk), geometry=Geometry.small())
    dev = Device.open(m)                                 # the first one is unharmed
    dev.addr_read(page_addrs(0, 0, 1, 0, 2))
    m.close()
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()):   # lock released on close
        pass


def test_store_unreadable_path_is_a_store_error(tmp_path):
    with pytest.raises(StoreError):
        Machine(volt=0, disk=str(tmp_path / "no" / "such" / "dir" / "ox.disk"), geometry=Geometry.small())


def test_store_default_disk_file_is_ox_disk_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Machine(volt=0, geometry=Geometry.small()):
        pass
    assert probe_geometry(str(tmp_path / "ox.disk")) == Geometry.small()


def test_store_close_releases_the_lock_while_a_media_view_is_alive(tmp_path):
    path = str(tmp_path / "held.disk")
    geo = Geometry.small()
    m = Machine(volt=0, disk=path, geometry=geo)
    view = m.device.volt.store.data[0, 0, 0, 0, 0]      # keeps the mmap from closing
    m.close()
    with Machine(volt=0, disk=path, geometry=geo) as again:
        assert again.device.volt.store.created is False
    del view


def test_store_power_cut_leaves_the_header_marked_unclean(tmp_path):
    from oxemu import Faults
    from oxhost.driver import DriverError
    path = str(tmp_path / "cut.disk")
    geo = Geometry.small()
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(power_cut_after=2)) as m:
        dev = Device.open(m, timeout=0.2)
        dev.addr_erase(block_planes(0, 0, 1, geo.nplanes))
        with pytest.raises(DriverError):
            dev.addr_erase(block_planes(0, 0, 2, geo.nplanes))
    assert _header(path).clean == 0
    with Machine(volt=0, disk=path, geometry=geo):
        pass
    assert _header(path).clean == 1


def test_store_disk_file_grows_by_the_blocks_written_not_the_capacity(tmp_path):
    path = tmp_path / "grow.disk"
    with Machine(volt=0, disk=str(path)) as m:           # default geometry: 4.25 GiB file
        dev = Device.open(m)
        before = os.stat(path).st_blocks * 512
        for blk in (3, 9):
            dev.addr_erase(block_planes(1, 2, blk, 2))
            p = page_addrs(1, 2, blk, 0, 2)
            dev.addr_write(p, stamp_sectors(p))
        dev.close()
    grown = os.stat(path).st_blocks * 512 - before
    block = 128 * 2 * 16384                               # one block, both planes
    assert 2 * block <= grown <= 2 * block + (2 << 20)
    with Machine(volt=0, disk=str(path)) as m:
        dev = Device.open(m)
        p = page_addrs(1, 2, 9, 0, 2)
        data, _ = dev.addr_read(p)
        assert (data == stamp_sectors(p)).all()
        dev.close()
