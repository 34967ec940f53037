"""VOLT disk file (volt=0): created sparse with a versioned, CRC'd header; refused --
and left byte-for-byte untouched -- when it is not ours, corrupt, of another version or
geometry, or locked by another device; written only once the media changes."""
import ctypes
import os

import pytest

from oxemu import Faults, Geometry, Machine, StoreError, probe_geometry, probe_label
from oxemu.volt.store import HEADER_NBYTES, MAGIC, VERSION, StopState, VoltHeader, _header_crc, layout
from oxemu.wire import LABEL_MAGIC, MediaMode
from oxhost.driver import DriverError
from oxhost.lightnvm import Addr, BlockState, Device, NvmError

from tests.helpers import block_planes, file_digest, page_addrs, stamp_sectors
from tests.oxemu.volt.v1disk import make_v1_disk


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
    assert h.stop == StopState.CLEAN
    assert h.label.magic == LABEL_MAGIC and h.label.mode == MediaMode.OPEN_CHANNEL
    assert h.label.last_stop_clean == 1
    st = os.stat(disk)
    assert st.st_size >= geo.data_nbytes + geo.oob_total_nbytes
    assert st.st_blocks * 512 < st.st_size // 8         # sparse: only what was written


def test_store_header_is_marked_running_from_the_first_mutation_until_a_clean_close(disk):
    before = file_digest(disk)
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        assert file_digest(disk) == before                   # opening writes nothing
        dev.addr_erase(block_planes(1, 1, 3, 2))
        assert _header(disk).stop == StopState.RUNNING
        assert _header(disk).label.power_cycles == 2
        dev.close()                                          # CC.SHN before the power-off
    h = _header(disk)
    assert h.stop == StopState.CLEAN and h.label.last_stop_clean == 1 and h.label.last_stop_s > 0


def test_store_open_that_only_identifies_the_device_leaves_the_file_byte_identical(disk):
    before = file_digest(disk)
    for _ in range(2):
        with Machine(volt=0, disk=str(disk), geometry=Geometry.small()) as m:
            dev = Device.open(m)
            dev.bbt_get(Addr(0, 1))
            dev.close()
    assert file_digest(disk) == before


def test_store_controller_shutdown_records_a_clean_stop_before_close(disk):
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 1, 3, 2))
        assert _header(disk).stop == StopState.RUNNING
        dev.close()                                          # CC.SHN
        assert _header(disk).stop == StopState.CLEAN
        dev = Device.open(m)                                 # re-enabled: writes mark it again
        dev.addr_erase(block_planes(0, 1, 4, 2))
        assert _header(disk).stop == StopState.RUNNING
        assert _header(disk).label.power_cycles == 2         # the same power-on
        dev.close()
    h = _header(disk)
    assert h.stop == StopState.CLEAN and (h.label.power_cycles, h.label.unsafe_shutdowns) == (2, 0)


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


def test_store_power_cut_leaves_the_header_marked_unclean_and_counts_one_unsafe_shutdown(tmp_path):
    path = str(tmp_path / "cut.disk")
    geo = Geometry.small()
    with Machine(volt=0, disk=path, geometry=geo, faults=Faults(power_cut_after=2)) as m:
        dev = Device.open(m, timeout=0.2)
        dev.addr_erase(block_planes(0, 0, 1, geo.nplanes))
        with pytest.raises(DriverError):
            dev.addr_erase(block_planes(0, 0, 2, geo.nplanes))
    h = _header(path)
    assert h.stop == StopState.UNSAFE
    assert (h.label.unsafe_shutdowns, h.label.last_stop_clean, h.label.power_cycles) == (1, 0, 1)
    before = file_digest(path)
    with Machine(volt=0, disk=path, geometry=geo):           # writes nothing: nothing changes
        pass
    assert file_digest(path) == before
    with Machine(volt=0, disk=path, geometry=geo) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 0, 2, geo.nplanes))
        dev.close()
    h = _header(path)
    assert h.stop == StopState.CLEAN
    assert (h.label.unsafe_shutdowns, h.label.last_stop_clean, h.label.power_cycles) == (1, 1, 2)


def test_store_power_off_without_a_controller_shutdown_after_writes_is_an_unsafe_shutdown(disk):
    """Machine.close() with no CC.SHN since the last mutation is the plug pulled (what
    the host stack's abandon() does); with no mutation since, it changes nothing."""
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(1, 0, 3, 2))
        dev.close()
        Device.open(m).addr_erase(block_planes(1, 0, 4, 2))
    h = _header(disk)
    assert h.stop == StopState.UNSAFE
    assert (h.label.unsafe_shutdowns, h.label.last_stop_clean, h.label.power_cycles) == (1, 0, 2)


def test_store_writer_that_died_is_counted_as_an_unsafe_shutdown_by_the_next_writer(disk, tmp_path):
    """A copy of the file taken while a writer runs is what a kill -9 leaves behind."""
    died = tmp_path / "died.disk"
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()) as m:
        Device.open(m).addr_erase(block_planes(0, 0, 4, 2))
        died.write_bytes(disk.read_bytes())
    assert _header(died).stop == StopState.RUNNING
    before = file_digest(died)
    with Machine(volt=0, disk=str(died), geometry=Geometry.small()) as m:
        lab = m.device.volt.label()                          # reported before anything is written
        assert (lab.unsafe_shutdowns, lab.last_stop_clean) == (1, 0)
    assert file_digest(died) == before
    with Machine(volt=0, disk=str(died), geometry=Geometry.small()) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 0, 5, 2))
        dev.close()
    lab = probe_label(str(died))
    assert (lab.unsafe_shutdowns, lab.power_cycles, lab.last_stop_clean) == (1, 3, 1)


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


# ---------------------------------------------------------------- version 1
def test_store_version_1_file_is_refused_with_one_line_naming_ox_format(tmp_path):
    path = tmp_path / "old.disk"
    make_v1_disk(path, Geometry.small())
    before = file_digest(path)
    with pytest.raises(StoreError) as e:
        Machine(volt=0, disk=str(path), geometry=Geometry.small())
    msg = str(e.value)
    assert "\n" not in msg
    assert "version 1" in msg and f"reads version {VERSION}" in msg and "ox format" in msg
    for probe in (probe_geometry, probe_label):
        with pytest.raises(StoreError, match="version 1"):
            probe(str(path))
    assert file_digest(path) == before


# ---------------------------------------------------------------- page states, label
def test_store_page_state_region_lies_between_the_tables_and_the_data():
    geo = Geometry.small()
    lay = layout(geo)
    assert lay["state_off"] + 7 * geo.block_planes <= lay["pstate_off"]
    assert lay["pstate_off"] + geo.total_pages <= lay["data_off"]
    assert all(lay[k] % 4096 == 0 for k in ("state_off", "pstate_off", "data_off", "oob_off"))


def test_store_lifetime_counters_survive_close_and_reopen(tmp_path):
    path = str(tmp_path / "life.disk")
    geo = Geometry.small()
    p = page_addrs(0, 1, 2, 0, 2)
    for session in range(1, 4):
        with Machine(volt=0, disk=path, geometry=geo) as m:
            dev = Device.open(m)
            dev.addr_erase(block_planes(0, 1, 2, 2))
            dev.addr_write(p, stamp_sectors(p))
            dev.addr_read(p)
            dev.addr_read(p[:1])
            dev.close()
        lab = probe_label(path)
        assert lab.power_cycles == session
        assert (lab.host_write_cmds, lab.host_read_cmds) == (session, 2 * session)
        assert (lab.data_units_written, lab.data_units_read) == (session, session)  # each rounds up
        assert lab.unsafe_shutdowns == 0 and lab.last_stop_clean == 1
    assert lab.mode == MediaMode.OPEN_CHANNEL and lab.created_s > 0 and lab.labelled_s > 0


# ---------------------------------------------------------------- read-only opens
def test_store_read_only_opens_coexist_and_leave_the_file_byte_identical(disk):
    before = file_digest(disk)
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small(), readonly=True) as a, \
            Machine(volt=0, disk=str(disk), geometry=Geometry.small(), readonly=True) as b:
        for m in (a, b):
            dev = Device.open(m)
            data, _ = dev.addr_read(page_addrs(0, 0, 1, 0, 2))
            assert (data == stamp_sectors(page_addrs(0, 0, 1, 0, 2))).all()
            dev.close()
    assert file_digest(disk) == before


def test_store_read_only_open_is_refused_next_to_a_writer_and_a_writer_next_to_it(disk, make_machine):
    w = make_machine(volt=0, disk=str(disk))
    with pytest.raises(StoreError, match="in use"):
        Machine(volt=0, disk=str(disk), geometry=Geometry.small(), readonly=True)
    w.close()
    r = make_machine(volt=0, disk=str(disk), readonly=True)
    with pytest.raises(StoreError, match="in use"):
        Machine(volt=0, disk=str(disk), geometry=Geometry.small())
    r.close()
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small()):
        pass


def test_store_read_only_open_of_a_missing_file_is_refused_and_creates_nothing(tmp_path):
    path = tmp_path / "missing.disk"
    with pytest.raises(StoreError, match="no such disk file"):
        Machine(volt=0, disk=str(path), geometry=Geometry.small(), readonly=True)
    assert not path.exists()


def test_store_read_only_open_completes_every_mutation_with_0x4020(disk):
    before = file_digest(disk)
    with Machine(volt=0, disk=str(disk), geometry=Geometry.small(), readonly=True) as m:
        dev = Device.open(m)
        p = page_addrs(0, 0, 1, 1, 2)
        for call in (lambda: dev.addr_erase(block_planes(0, 0, 3, 2)),
                     lambda: dev.addr_write(p, stamp_sectors(p)),
                     lambda: dev.bbt_mark([Addr(0, 0, pl=0, blk=6)], BlockState.HOST)):
            with pytest.raises(NvmError) as e:
                call()
            assert e.value.status == 0x4020
        assert not dev.bbt_get(Addr(0, 0)).blks.any()
        dev.close()
    assert file_digest(disk) == before
