"""MediaImage on AppNVM media: what it decodes (checkpoints, trim journal, unit headers)
and the map it rebuilds agree with the device that wrote the media, and inspecting never
changes, creates or locks out anything."""
import os

import numpy as np
import pytest

from oxemu import MediaImage, StoreError
from oxemu.volt.store import layout

from tests.helpers import file_digest
from .conftest import GEO, Nvme, stamp


def _fill(n, version=1):
    for s in range(0, n.nlbas, 256):
        k = min(256, n.nlbas - s)
        assert n.write(s, stamp(np.arange(s, s + k), version)) == 0


def _image(path) -> dict:
    with MediaImage(path) as img:
        return img.inspect()


def _valid(doc) -> np.ndarray:
    return np.array([b["valid_sectors"] for b in doc["blocks"]]).reshape(GEO.total_luns, GEO.nblocks)


def _erases(doc) -> np.ndarray:
    return np.array([max(b["erase_count"]) for b in doc["blocks"]]).reshape(GEO.total_luns, GEO.nblocks)


def test_inspect_after_a_clean_stop_agrees_with_the_device_that_wrote_it(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk)
    n = Nvme(m)
    _fill(n)
    rng = np.random.default_rng(1)
    n.write_stamped(rng.choice(n.nlbas, 300, replace=False), 2)     # garbage: GC and partial blocks
    assert n.dsm([(100, 64), (2000, 8)]) == 0
    n.shutdown()                                                    # a clean checkpoint
    valid, erases = m.block_valid_sectors(), m.erase_counts()
    written = n.ops.counters["host_sectors_written"]
    m.close()
    before = file_digest(disk)
    doc = _image(disk)
    assert file_digest(disk) == before
    assert doc["label"]["mode"] == "appnvm" and doc["stop"] == "clean"
    assert (_valid(doc) == valid).all() and valid.sum() == n.nlbas - 72
    assert (_erases(doc) == erases).all()
    app = doc["appnvm"]
    assert app["ftl"]["error"] is None and app["ftl"]["clean"] is True
    assert app["ftl"]["mapped_sectors"] == n.nlbas - 72
    used = [c for c in app["checkpoints"] if c["used_by_recovery"]]
    assert len(used) == 1 and used[0]["valid"] and used[0]["clean"] is True
    assert used[0]["id"] == app["ftl"]["checkpoint"] == max(c["id"] for c in app["checkpoints"])
    assert used[0]["counters"]["host_sectors_written"] == written
    assert [b["ftl_state"] for b in doc["blocks"]].count("meta") == len(app["metadata"]["meta_blocks"]) >= 1
    streams = {b["stream"] for b in doc["blocks"] if b["valid_sectors"]}
    assert streams <= {"user", "gc"}
    for b in doc["blocks"]:                     # an erased block has no header; a written one has ours
        assert (b["header"] is None) == (max(b["wp"]) == 0)
        assert b["header"] in (None, "ours")


def test_trim_records_after_the_last_checkpoint_are_listed_and_replayed(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk)
    n = Nvme(m)
    _fill(n)
    n.shutdown()
    n = Nvme(m)
    ranges = [(10, 5), (700, 33), (4000, 1)]
    for r in ranges:
        assert n.dsm([r]) == 0
    assert n.flush() == 0                       # the journal is written on FLUSH
    m.close()                                   # then the plug: no checkpoint after it
    doc = _image(disk)
    app = doc["appnvm"]
    j = app["trim_journal"]
    assert j["records_after_checkpoint"] == len(ranges) == app["ftl"]["trims_replayed"]
    assert j["sectors"] >= sum(k for _, k in ranges)
    assert j["seq_min"] <= j["seq_max"] and j["seq_min"] > app["ftl"]["checkpoint"]
    assert app["ftl"]["clean"] is False and doc["stop"] == "unsafe"
    assert app["ftl"]["mapped_sectors"] == n.nlbas - sum(k for _, k in ranges)
    m = appnvm_machine(volt=0, disk=disk)       # the device's own start: the same map
    assert (m.block_valid_sectors() == _valid(doc)).all()


def test_a_corrupt_checkpoint_is_reported_invalid_and_the_one_before_is_used(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk)
    n = Nvme(m)
    _fill(n)
    n.shutdown()                                # checkpoint A
    n = Nvme(m)
    n.write_stamped(np.arange(50), 2)
    n.shutdown()                                # checkpoint B, in the same metadata block
    m.close()
    first = _image(disk)["appnvm"]["checkpoints"]
    assert len(first) >= 2 and all(c["valid"] for c in first)
    newest = first[-1]
    ch, lun, blk = newest["blocks"][0]
    pg = next(p for p in range(GEO.npages) if _unit_is(disk, ch, lun, blk, p, newest["id"]))
    off = _page_off(ch, lun, blk, pg, 0) + 5000            # inside the L2P the payload CRC covers
    with open(disk, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
    app = _image(disk)["appnvm"]
    bad = next(c for c in app["checkpoints"] if c["id"] == newest["id"])
    assert not bad["valid"] and "CRC" in bad["error"] and not bad["used_by_recovery"]
    assert app["ftl"]["checkpoint"] == first[-2]["id"]
    assert next(c for c in app["checkpoints"] if c["id"] == first[-2]["id"])["used_by_recovery"]


def _page_off(ch, lun, blk, pg, pl) -> int:
    row = (((ch * GEO.nluns + lun) * GEO.nblocks + blk) * GEO.npages + pg) * GEO.nplanes + pl
    return layout(GEO)["data_off"] + row * GEO.page_nbytes


def _unit_is(disk, ch, lun, blk, pg, ckpt) -> bool:
    """The unit at pg carries part of checkpoint `ckpt` (its OOB header says so)."""
    from oxemu.device.appnvm.layout import unit_header_dtype
    hd = unit_header_dtype(GEO.nplanes * GEO.nsectors)
    row = (((ch * GEO.nluns + lun) * GEO.nblocks + blk) * GEO.npages + pg) * GEO.nplanes
    with open(disk, "rb") as f:
        f.seek(layout(GEO)["oob_off"] + row * GEO.oob_nbytes)
        h = np.frombuffer(f.read(hd.itemsize), hd)[0]
    return int(h["kind"]) == 2 and int(h["ckpt"]) == ckpt


def test_a_disk_held_by_a_running_device_is_refused_and_readers_share(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk)
    Nvme(m).shutdown()
    with pytest.raises(StoreError, match="in use by another process"):
        MediaImage(disk)
    m.close()
    with MediaImage(disk) as a, MediaImage(disk) as b:     # shared readers
        assert a.inspect()["blocks"] == b.inspect()["blocks"]


def test_missing_empty_and_foreign_files_are_refused_and_nothing_is_created(tmp_path):
    missing = tmp_path / "none.disk"
    with pytest.raises(StoreError, match="no such disk file"):
        MediaImage(str(missing))
    assert not missing.exists()
    empty = tmp_path / "empty.disk"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="not an OX disk file"):
        MediaImage(str(empty))
    other = tmp_path / "other.disk"
    other.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match="not an OX disk file"):
        MediaImage(str(other))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.disk", "other.disk"]
