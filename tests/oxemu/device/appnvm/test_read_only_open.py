"""A read-only open in AppNVM mode (Machine(lnvm=0, readonly=True)): the FTL rebuilds its
map in memory from what the media holds -- after a clean or an unclean stop -- and writes
nothing: the disk file stays byte-identical (no checkpoint, no label change, no power
cycle counted), under a shared lock. Through the bus, reads serve the data, FLUSH
succeeds, WRITE and DATASET MANAGEMENT complete NS_WRITE_PROTECTED | DNR."""
import hashlib

import numpy as np
import pytest

from oxemu import Machine, StoreError, probe_label
from oxemu.wire import CC, CSTS, Reg, Status

from .conftest import GEO, Nvme, stamp

WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR       # 0x4020


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _written_disk(path, clean: bool) -> np.ndarray:
    """A disk file whose LBAs 0..299 hold version 1 and 0..99 version 2 (flushed), and
    LBAs 300..303 were deallocated; stopped cleanly or not. Returns the versions."""
    m = Machine(lnvm=0, volt=0, disk=path, geometry=GEO)
    n = Nvme(m)
    ref = np.zeros(n.nlbas, dtype=np.int64)
    for s in range(0, 304, 152):
        assert n.write(s, stamp(np.arange(s, s + 152), 1)) == 0
    assert n.write(0, stamp(np.arange(100), 2)) == 0
    assert n.dsm([(300, 4)]) == 0
    assert n.flush() == 0
    ref[:300], ref[:100] = 1, 2
    if clean:
        n.shutdown()
    m.close()                               # without a shutdown: the power went
    return ref


@pytest.mark.parametrize("clean", [True, False], ids=["after-clean-stop", "after-unclean-stop"])
def test_read_only_appnvm_open_serves_the_recovered_map_and_leaves_the_disk_byte_identical(
        appnvm_machine, tmp_path, clean):
    path = str(tmp_path / "ox.disk")
    ref = _written_disk(path, clean)
    before, label = _sha(path), bytes(probe_label(path))

    m = appnvm_machine(volt=0, disk=path, readonly=True)
    n = Nvme(m)
    assert n.ops.read_only and "read-only" in n.ops.read_only_reason
    assert (n.read_versions(0, 512) == ref[:512]).all()          # the map as written
    assert n.write(0, stamp(0, 9)) == WRITE_PROTECTED
    assert n.write(1000, stamp(np.arange(1000, 1032), 9)) == WRITE_PROTECTED
    assert n.dsm([(0, 8)]) == WRITE_PROTECTED
    assert n.flush() == 0                                         # nothing buffered: succeeds
    assert (n.read_versions(0, 512) == ref[:512]).all()          # nothing changed
    m.reg_write32(Reg.CC, m.reg_read32(Reg.CC) & ~CC.EN)          # a controller reset
    assert not m.reg_read32(Reg.CSTS) & CSTS.RDY
    n = Nvme(m)                                                   # enabled again
    assert (n.read_versions(0, 304) == ref[:304]).all()
    n.shutdown()
    m.close()
    assert _sha(path) == before and bytes(probe_label(path)) == label


def test_read_only_appnvm_opens_share_the_disk_and_keep_a_writer_out(appnvm_machine, tmp_path):
    path = str(tmp_path / "ox.disk")
    _written_disk(path, clean=True)
    a = appnvm_machine(volt=0, disk=path, readonly=True)
    b = appnvm_machine(volt=0, disk=path, readonly=True)
    assert Nvme(a).read(0)[0] == 0 and Nvme(b).read(0)[0] == 0
    with pytest.raises(StoreError, match="in use"):
        Machine(lnvm=0, volt=0, disk=path, geometry=GEO)


def test_read_only_appnvm_open_counts_nothing_a_writable_open_then_counts(appnvm_machine, tmp_path):
    """A look through a read-only open is no power cycle and leaves the unclean stop on
    record; the next writable start counts one power cycle and stops cleanly."""
    path = str(tmp_path / "ox.disk")
    _written_disk(path, clean=False)
    lab = probe_label(path)
    assert lab.last_stop_clean == 0 and lab.unsafe_shutdowns == 1
    m = appnvm_machine(volt=0, disk=path, readonly=True)
    Nvme(m).shutdown()
    m.close()
    assert bytes(probe_label(path)) == bytes(lab)
    w = appnvm_machine(volt=0, disk=path)
    Nvme(w).shutdown()
    w.close()
    after = probe_label(path)
    assert (after.power_cycles, after.unsafe_shutdowns) == (lab.power_cycles + 1, 1)
    assert after.last_stop_clean == 1
