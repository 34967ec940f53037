"""AppNVM read-only mode (SPEC 8): when grown bad blocks eat the over-provisioning so the
exported capacity can no longer be guaranteed, the device neither wedges nor refuses to
start. It goes read-only for good: every byte stays readable, FLUSH succeeds, WRITE and
DATASET MANAGEMENT complete with NS_WRITE_PROTECTED | DNR, and the next start comes up
read-only without writing anything.

The threshold (provisioning.py): writes are accepted while the blocks that stay good
could still be formatted to the exported capacity -- its blocks plus the GC/metadata
reserve, two spares and one checkpoint's span (`Provision.min_good`).
"""
import logging

import numpy as np

from oxemu import Faults
from oxemu.wire import Status

from .conftest import GEO, Nvme, check_map, stamp

WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR       # 0x4020


def _disk(tmp_path):
    return str(tmp_path / "ox.disk")


def _churn_until_read_only(n, seed, limit):
    """Prefill, then random overwrites until a write is refused; returns (reference
    versions, the refused write's (lba, version), retired blocks seen while writable)."""
    cap = n.nlbas
    ref = np.zeros(cap, dtype=np.int64)
    for s in range(0, cap, 256):
        k = min(256, cap - s)
        assert n.write(s, stamp(np.arange(s, s + k), 1)) == 0
    ref[:] = 1
    rng = np.random.default_rng(seed)
    retired_writable = 0
    for i, lba in enumerate(rng.integers(0, cap, limit).tolist(), 2):
        st = n.write(lba, stamp(lba, i))
        if st:
            assert st == WRITE_PROTECTED, f"write failed with 0x{st:04x}, not write-protected"
            return ref, (lba, i), retired_writable
        ref[lba] = i
        if not n.ops.read_only:
            retired_writable = n.ops.blocks.counters["retired"]
    raise AssertionError("the spares never ran out")


def test_erase_failures_that_eat_the_spares_make_the_device_read_only_not_wedged(
        appnvm_machine, tmp_path, caplog):
    """Erase failures retire blocks one by one. The device keeps writing while the good
    blocks cover capacity + reserves, then turns read-only with one WARNING: reads all
    succeed, FLUSH succeeds, WRITE and DSM get 0x4020; a restart opens read-only at once,
    without programming anything."""
    disk = _disk(tmp_path)
    m = appnvm_machine(volt=0, disk=disk, faults=Faults(erase_fail_rate=0.04, seed=3))
    n = Nvme(m)
    ops = n.ops
    min_good = ops.prov.min_good
    assert ops.blocks.good - min_good >= 4                       # some spare to eat first
    with caplog.at_level(logging.WARNING):
        ref, (lba, ver), retired_writable = _churn_until_read_only(n, seed=5, limit=20 * n.nlbas)
    st = ops.stats()
    assert st["read_only"] and st["erase_fails"] == st["retired_blocks"] > 0
    assert st["good_blocks"] < min_good                         # read-only once under the threshold,
    assert ops.addr.total_blocks - retired_writable >= min_good  # and not before
    assert any("read-only" in r.getMessage() and r.levelno == logging.WARNING
               and r.name.startswith("oxemu.device.appnvm") for r in caplog.records)
    got = n.read_versions()
    assert got[lba] in (ref[lba], ver)                           # the refused write: either version
    got[lba] = ref[lba]
    assert (got == ref).all()
    assert n.write(0, stamp(0, 99)) == WRITE_PROTECTED
    assert n.dsm([(0, 8)]) == WRITE_PROTECTED
    assert n.flush() == 0
    assert (n.read_versions(0, 8) == ref[:8]).all()             # the refused DSM changed nothing
    check_map(ops)
    n.shutdown()
    m.close()

    m = appnvm_machine(volt=0, disk=disk)                        # no faults: still read-only
    assert m.device.volt.counters["programs"] == 0 and m.device.volt.counters["erases"] == 0
    n = Nvme(m)
    assert n.ops.read_only
    got = n.read_versions()
    got[lba] = ref[lba] if got[lba] == ver else got[lba]
    assert (got == ref).all()
    assert n.write(5, stamp(5, 100)) == WRITE_PROTECTED
    assert n.dsm([(5, 1)]) == WRITE_PROTECTED
    assert n.flush() == 0
    assert m.device.volt.counters["programs"] == 0
    check_map(n.ops)


def _spare_blocks(appnvm_machine) -> tuple[int, int]:
    """(good blocks, min_good) of a new device of the test geometry."""
    m = appnvm_machine()
    ops = m.device.mode
    return ops.blocks.good, ops.prov.min_good


def _factory_bad(nblocks: int) -> set:
    """One bad plane on each of nblocks blocks, spread over the LUNs."""
    out = set()
    for i in range(nblocks):
        lun = i % GEO.total_luns
        out.add((lun // GEO.nluns, lun % GEO.nluns, GEO.nblocks - 1 - i // GEO.total_luns, i % 2))
    return out


def test_a_device_with_too_few_good_blocks_starts_read_only(appnvm_machine):
    """One good block fewer than the capacity needs: the device starts (read-only, with
    one WARNING) instead of refusing to, reads answer, FLUSH succeeds, writes get 0x4020."""
    good, min_good = _spare_blocks(appnvm_machine)
    m = appnvm_machine(faults=Faults(factory_bad=_factory_bad(good - min_good + 1)))
    n = Nvme(m)
    assert n.ops.read_only and n.ops.blocks.good == min_good - 1
    assert m.device.volt.counters["programs"] == 0
    assert (n.read_versions(0, 512) == 0).all()
    assert n.write(0, stamp(0, 2)) == WRITE_PROTECTED
    assert n.dsm([(0, 1)]) == WRITE_PROTECTED
    assert n.flush() == 0


def test_exactly_the_blocks_the_capacity_needs_still_take_every_write(appnvm_machine):
    """min_good good blocks are enough: the whole capacity written, then overwritten
    at random, with GC at work and no write refused."""
    good, min_good = _spare_blocks(appnvm_machine)
    m = appnvm_machine(faults=Faults(factory_bad=_factory_bad(good - min_good)))
    n = Nvme(m)
    ops = n.ops
    assert ops.blocks.good == min_good and not ops.read_only
    rng = np.random.default_rng(3)
    cap = n.nlbas
    ref = np.zeros(cap, dtype=np.int64)
    for s in range(0, cap, 256):
        k = min(256, cap - s)
        assert n.write(s, stamp(np.arange(s, s + k), 1)) == 0
    ref[:] = 1
    for i, lba in enumerate(rng.integers(0, cap, cap).tolist(), 2):
        assert n.write(lba, stamp(lba, i)) == 0
        ref[lba] = i
    assert not ops.read_only and ops.stats()["gc_victims"] > 0
    assert (n.read_versions() == ref).all()
    check_map(ops)
