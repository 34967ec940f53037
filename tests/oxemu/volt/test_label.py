"""The media label (SPEC 8): a disk file says which mode wrote it, for which target and
capacity, and its lifetime; a device of another mode or capacity is refused before
anything is written; read-only media takes no writes; `format_media` is the one
deliberate way to reuse media and keeps what the media knows about itself."""
import logging
import os

import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine, StoreError, format_media, probe_geometry, probe_label
from oxemu.wire import MediaLabel, MediaMode, TargetKind
from oxhost.driver import NvmeDriver
from oxhost.lightnvm import Addr, BlockState, Device, NvmError

from tests.helpers import block_planes, file_digest, page_addrs, stamp_sectors
from tests.oxemu.volt.v1disk import make_v1_disk

GEO = Geometry.small()
APPNVM_GEO = Geometry.small(nblocks=16)     # room for the AppNVM FTL's reserves
CAP = 2000 * 4096


def _pblk(b=0, e=3, uuid=b"") -> MediaLabel:
    lab = MediaLabel(target=TargetKind.PBLK, lun_begin=b, lun_end=e, capacity_bytes=4 << 20)
    lab.uuid[:] = list(uuid.ljust(16, b"\0"))
    return lab


def _refused(path, match, **kw):
    """Machine(**kw) on path raises one StoreError line matching; the file is unchanged."""
    before = file_digest(path)
    kw.setdefault("geometry", GEO)
    with pytest.raises(StoreError, match=match) as e:
        Machine(volt=0, disk=str(path), **kw)
    assert "\n" not in str(e.value)
    assert file_digest(path) == before, "a refused open modified the disk file"
    return str(e.value)


@pytest.fixture
def pblk_disk(tmp_path):
    """Open-channel media holding a pblk target on LUNs 0-3, one page written."""
    path = tmp_path / "ox.disk"
    with Machine(volt=0, disk=str(path), geometry=GEO) as m:
        dev = Device.open(m)
        dev.driver.set_target(_pblk(uuid=b"pblk-instance-01"))
        dev.addr_erase(block_planes(0, 0, 1, 2))
        p = page_addrs(0, 0, 1, 0, 2)
        dev.addr_write(p, stamp_sectors(p))
        dev.close()
    return path


# ---------------------------------------------------------------- mode checks
@pytest.mark.parametrize("readonly", [False, True], ids=["read-write", "read-only"])
def test_open_of_appnvm_media_in_open_channel_mode_is_refused_and_leaves_the_file_byte_identical(tmp_path, readonly):
    path = tmp_path / "ox.disk"
    format_media(str(path), geometry=GEO, mode=MediaMode.APPNVM, capacity_bytes=CAP)
    msg = _refused(path, "holds an AppNVM volume", lnvm=1, readonly=readonly)
    assert msg == (f"{path} holds an AppNVM volume of 8,192,000 bytes (device-side FTL, lnvm=0); "
                   f"refusing to use it in open-channel mode (lnvm=1)")


def test_open_of_a_pblk_volume_in_appnvm_mode_is_refused_and_leaves_the_file_byte_identical(pblk_disk):
    msg = _refused(pblk_disk, "pblk", lnvm=0, geometry=GEO)
    assert "holds a pblk volume on LUNs 0-3 (open-channel, lnvm=1)" in msg


def test_open_of_open_channel_media_without_a_target_in_appnvm_mode_is_refused(tmp_path):
    path = tmp_path / "ox.disk"
    with Machine(volt=0, disk=str(path), geometry=GEO) as m:
        Device.open(m).addr_erase(block_planes(1, 0, 2, 2))
    _refused(path, "open-channel media without a target", lnvm=0)


def test_open_of_an_appnvm_volume_with_another_capacity_is_refused_and_leaves_the_file_byte_identical(tmp_path):
    path = tmp_path / "ox.disk"
    format_media(str(path), geometry=APPNVM_GEO, mode=MediaMode.APPNVM, capacity_bytes=CAP)
    msg = _refused(path, "formatted with a capacity of 8,192,000 bytes, not the 12,288,000",
                   lnvm=0, geometry=APPNVM_GEO, appnvm_capacity=3000 * 4096)
    assert msg.startswith(f"{path} holds an AppNVM volume")


def test_appnvm_device_uses_the_capacity_its_label_records(tmp_path):
    path = tmp_path / "ox.disk"
    format_media(str(path), geometry=APPNVM_GEO, mode=MediaMode.APPNVM, capacity_bytes=CAP)
    with Machine(lnvm=0, volt=0, disk=str(path), geometry=APPNVM_GEO) as m:
        assert m.device.mode.nlbas == 2000
    assert probe_label(str(path)).capacity_bytes == CAP


def test_appnvm_device_records_its_exported_capacity_on_blank_media(tmp_path):
    path = tmp_path / "ox.disk"
    with Machine(lnvm=0, volt=0, disk=str(path), geometry=APPNVM_GEO, appnvm_capacity=CAP) as m:
        lab = NvmeDriver(m).media_label()
        assert (lab.mode, lab.capacity_bytes) == (MediaMode.APPNVM, CAP)
    lab = probe_label(str(path))
    assert (lab.mode, lab.capacity_bytes, lab.target) == (MediaMode.APPNVM, CAP, TargetKind.NONE)
    assert lab.labelled_s > 0 and lab.power_cycles == 1
    with Machine(lnvm=0, volt=0, disk=str(path), geometry=APPNVM_GEO) as m:   # None: the label's
        assert m.device.mode.nlbas * 4096 == CAP


def test_first_mutation_labels_blank_media_with_the_device_mode(tmp_path):
    path = str(tmp_path / "ox.disk")
    with Machine(volt=0, disk=path, geometry=GEO) as m:
        dev = Device.open(m)
        assert dev.driver.media_label().mode == MediaMode.BLANK
        assert probe_label(path).mode == MediaMode.BLANK
        dev.addr_erase(block_planes(0, 1, 1, 2))
        lab = dev.driver.media_label()
        assert (lab.mode, lab.power_cycles) == (MediaMode.OPEN_CHANNEL, 1) and lab.labelled_s > 0
        assert probe_label(path).mode == MediaMode.OPEN_CHANNEL          # on disk at once
        dev.close()


def test_open_that_only_reads_the_label_leaves_blank_media_blank_and_byte_identical(tmp_path):
    path = tmp_path / "ox.disk"
    format_media(str(path), geometry=GEO)
    before = file_digest(path)
    with Machine(volt=0, disk=str(path), geometry=GEO) as m:
        dev = Device.open(m)
        assert dev.driver.media_label().mode == MediaMode.BLANK
        dev.close()
    with Machine(volt=0, disk=str(path), geometry=GEO, readonly=True) as m:
        Device.open(m).close()
    assert file_digest(path) == before


# ---------------------------------------------------------------- probe_label
def test_probe_label_reads_without_writing_or_locking(pblk_disk, make_machine, tmp_path):
    before = file_digest(pblk_disk)
    make_machine(volt=0, disk=str(pblk_disk))                 # a writer holds the lock
    lab = probe_label(str(pblk_disk))
    assert (lab.mode, lab.target, lab.lun_begin, lab.lun_end) == (MediaMode.OPEN_CHANNEL, TargetKind.PBLK, 0, 3)
    assert bytes(lab.uuid) == b"pblk-instance-01" and lab.capacity_bytes == 4 << 20
    assert probe_geometry(str(pblk_disk)) == GEO
    assert file_digest(pblk_disk) == before
    assert probe_label(str(tmp_path / "missing.disk")) is None
    (tmp_path / "empty.disk").write_bytes(b"")
    assert probe_label(str(tmp_path / "empty.disk")) is None
    (tmp_path / "notes.txt").write_bytes(b"hello world\n" * 100)
    with pytest.raises(StoreError, match="magic"):
        probe_label(str(tmp_path / "notes.txt"))


# ---------------------------------------------------------------- read-only media
def test_read_only_media_refuses_erase_write_and_bbt_changes_with_0x4020_and_stays_so(tmp_path, caplog):
    path = str(tmp_path / "ox.disk")
    p = page_addrs(1, 1, 2, 0, 2)
    with Machine(volt=0, disk=path, geometry=GEO) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(1, 1, 2, 2))
        dev.addr_write(p, stamp_sectors(p))
        with caplog.at_level(logging.WARNING, logger="oxemu.volt.media"):
            m.device.volt.set_read_only("spare blocks used up")
            m.device.volt.set_read_only("spare blocks used up")
        assert [r.getMessage() for r in caplog.records].count(
            "VOLT: media placed in read-only mode: spare blocks used up") == 1
        assert m.device.volt.read_only and probe_label(path).read_only == 1   # persisted at once
        dev.close()
    with open(path, "rb") as f:
        before = f.read()
    with Machine(volt=0, disk=path, geometry=GEO) as m:
        dev = Device.open(m)
        assert m.device.volt.read_only
        p1 = page_addrs(1, 1, 2, 1, 2)
        for call in (lambda: dev.addr_erase(block_planes(1, 1, 3, 2)),
                     lambda: dev.addr_write(p1, stamp_sectors(p1)),
                     lambda: dev.bbt_mark([Addr(1, 1, pl=0, blk=5)], BlockState.HOST)):
            with pytest.raises(NvmError) as e:
                call()
            assert e.value.status == 0x4020
        data, _ = dev.addr_read(p)                              # reads still work
        assert (data == stamp_sectors(p)).all()
        dev.close()
    with open(path, "rb") as f:
        after = f.read()
    assert after == before, "read-only media changed"           # not even the read counters
    lab = probe_label(path)
    assert lab.read_only == 1 and lab.power_cycles == 1 and lab.host_read_cmds == 0


# ---------------------------------------------------------------- format_media
def test_format_wipes_the_data_and_keeps_bad_blocks_erase_counts_and_lifetime(tmp_path):
    path = str(tmp_path / "ox.disk")
    faults = Faults(factory_bad={(0, 0, 7, 1)}, erase_fail={(1, 0, 4)})
    p = page_addrs(0, 1, 2, 0, 2)
    with Machine(volt=0, disk=path, geometry=GEO, faults=faults) as m:
        dev = Device.open(m)
        dev.addr_erase(block_planes(0, 1, 2, 2) + block_planes(0, 1, 3, 2))
        dev.addr_write(p, stamp_sectors(p))
        with pytest.raises(NvmError):
            dev.addr_erase(block_planes(1, 0, 4, 2))             # grows a bad block
        dev.driver.set_target(_pblk())
        dev.close()
    old = probe_label(path)
    label = format_media(path)
    lab = probe_label(path)
    assert bytes(lab) == bytes(label)
    assert (lab.mode, lab.target, lab.capacity_bytes, lab.labelled_s) == (MediaMode.BLANK, TargetKind.NONE, 0, 0)
    assert lab.formatted_s > 0 and lab.created_s == old.created_s
    assert (lab.power_cycles, lab.host_write_cmds, lab.data_units_written) == \
        (old.power_cycles, old.host_write_cmds, old.data_units_written)
    assert os.stat(path).st_blocks * 512 <= 64 << 10                   # sparse again
    with Machine(volt=0, disk=path, geometry=GEO) as m:
        store = m.device.volt.store
        assert store.bbt[0, 0, 7].tolist() == [0, BlockState.BAD]
        assert store.bbt[1, 0, 4].tolist() == [BlockState.GRWN_BAD] * 2
        assert store.erase_count[0, 1, 2].tolist() == [2, 2]             # held data: +1
        assert store.erase_count[0, 1, 3].tolist() == [1, 1]             # erased, empty
        assert not store.next_page.any() and not store.page_state.any()
        dev = Device.open(m)
        with pytest.raises(NvmError) as e:
            dev.addr_read(p)
        assert e.value.status == 0x42FF
        dev.driver.set_target(_pblk(0, 1))                     # a new target is welcome
        dev.close()


def test_format_records_the_label_asked_for_and_the_target_fills_in_its_uuid(tmp_path):
    path = str(tmp_path / "ox.disk")
    format_media(path, geometry=GEO, mode=MediaMode.OPEN_CHANNEL, target=TargetKind.PBLK, luns=(0, 3),
                 capacity_bytes=4 << 20)
    lab = probe_label(path)
    assert (lab.mode, lab.target, lab.lun_begin, lab.lun_end) == (MediaMode.OPEN_CHANNEL, TargetKind.PBLK, 0, 3)
    assert not any(lab.uuid)
    with Machine(volt=0, disk=path, geometry=GEO) as m:
        drv = Device.open(m).driver
        drv.set_target(_pblk(uuid=b"fresh-instance!!"))
        drv.shutdown()
    assert bytes(probe_label(path).uuid) == b"fresh-instance!!"


def test_format_creates_a_new_sparse_file_of_the_default_geometry(tmp_path):
    path = str(tmp_path / "new.disk")
    lab = format_media(path, mode=MediaMode.APPNVM, capacity_bytes=CAP)
    assert probe_geometry(path) == Geometry()
    assert (lab.mode, lab.capacity_bytes, lab.power_cycles) == (MediaMode.APPNVM, CAP, 0)
    assert os.stat(path).st_blocks * 512 <= 64 << 10


def test_format_refuses_a_file_in_use(pblk_disk, make_machine):
    before = file_digest(pblk_disk)
    for kw in (dict(), dict(readonly=True)):
        m = make_machine(volt=0, disk=str(pblk_disk), **kw)
        with pytest.raises(StoreError, match="in use"):
            format_media(str(pblk_disk))
        m.close()
    assert file_digest(pblk_disk) == before


def test_format_converts_a_version_1_file_keeping_its_bad_blocks_and_erase_counts(tmp_path):
    path = tmp_path / "old.disk"
    make_v1_disk(path, GEO, grown={(1, 1, 6, 0)}, erases={(1, 1, 5, 1): 7})
    format_media(str(path), mode=MediaMode.OPEN_CHANNEL)
    with Machine(volt=0, disk=str(path), geometry=GEO) as m:
        store = m.device.volt.store
        assert store.bbt[1, 1, 6].tolist() == [BlockState.GRWN_BAD, 0]
        assert np.count_nonzero(store.bbt) == 1
        assert store.erase_count[1, 1, 5].tolist() == [0, 7]
    assert probe_label(str(path)).mode == MediaMode.OPEN_CHANNEL


@pytest.mark.parametrize("content", [b"hello world\n" * 1000, b"OXVOLT\x00\x01" + b"\xff" * 5000],
                         ids=["foreign", "corrupt"])
def test_format_refuses_a_file_that_is_not_a_valid_ox_disk_untouched(tmp_path, content):
    path = tmp_path / "x.disk"
    path.write_bytes(content)
    with pytest.raises(StoreError):
        format_media(str(path))
    assert path.read_bytes() == content


def test_format_of_another_geometry_is_refused_untouched(pblk_disk):
    before = file_digest(pblk_disk)
    with pytest.raises(StoreError, match="geometry"):
        format_media(str(pblk_disk), geometry=Geometry.small(nblocks=16))
    assert file_digest(pblk_disk) == before


@pytest.mark.parametrize("kw", [dict(mode=MediaMode.APPNVM, target=TargetKind.PBLK),
                                dict(mode=MediaMode.OPEN_CHANNEL, target=TargetKind.PBLK, luns=(2, 9)),
                                dict(mode=MediaMode.APPNVM, capacity_bytes=4097),
                                dict(mode=MediaMode.OPEN_CHANNEL, luns=(0, 1))],
                         ids=["target-on-appnvm", "luns-outside", "partial-sector", "luns-without-target"])
def test_format_with_an_impossible_label_is_a_value_error_and_leaves_no_file(tmp_path, kw):
    path = tmp_path / "new.disk"
    with pytest.raises(ValueError):
        format_media(str(path), geometry=GEO, **kw)
    assert not path.exists()
