"""AppNVM media errors, one policy (SPEC 9): a sector the media cannot read stays mapped
where it is and keeps failing -- GC never turns it into zeros, never erases the block
that holds it and never spins on that block -- and a host read of it completes with
UNRECOVERED_READ (0x0281). Counters say what happened.

The media here fails every read while `read_error_rate` is 1.0 (a page that cannot be
read however often it is retried) and reads normally again once it is back to 0.
"""
import numpy as np
import pytest

from oxemu.device.appnvm.blocks import BState
from oxemu.wire import Status

from .conftest import Nvme, check_map, stamp


def _garbage_everywhere(n):
    """Whole capacity at version 1, then every fourth LBA rewritten (version 2): every
    closed block holds garbage and is a GC candidate."""
    cap = n.nlbas
    for s in range(0, cap, 256):
        k = min(256, cap - s)
        assert n.write(s, stamp(np.arange(s, s + k), 1)) == 0
    ref = np.ones(cap, dtype=np.int64)
    lbas = np.arange(0, cap, 4)
    for lba in lbas.tolist():
        assert n.write(lba, stamp(lba, 2)) == 0
    ref[lbas] = 2
    assert n.flush() == 0
    return ref


@pytest.mark.device_errors_expected    # GC logs the sector it cannot read
def test_gc_leaves_unreadable_sectors_mapped_erases_nothing_and_does_not_spin(appnvm_machine):
    """GC meets pages it cannot read: their sectors stay mapped in place, the victims are
    not erased while they hold them, a second GC pass does not touch them again, the
    host gets 0x0281 for them, and once the media reads again they hold their data."""
    m = appnvm_machine()
    n = Nvme(m)
    ops, volt = n.ops, m.device.volt
    ref = _garbage_everywhere(n)
    l2p = ops.map.l2p.copy()
    valid = ops.map.valid.copy()
    closed = np.flatnonzero((ops.blocks.state == BState.CLOSED) & (valid > 0))
    erases = volt.counters["erases"]

    volt.faults.read_error_rate = 1.0
    ops.gc.make_room(ops.blocks.nfree + 4)
    ops.gc.flush()
    gc = ops.gc.counters
    assert gc["read_errors"] > 0 and gc["stuck_blocks"] > 0
    assert (ops.map.l2p == l2p).all()                           # nothing moved, nothing zeroed
    assert (ops.map.valid[closed] == valid[closed]).all()       # nor dropped
    assert (ops.blocks.state[closed] == BState.CLOSED).all()    # nor erased
    assert volt.counters["erases"] == erases
    stuck = np.flatnonzero(ops.gc.stuck >= 0)
    assert stuck.size == gc["stuck_blocks"]

    reads = volt.counters["read_errors"] + volt.counters["reads"]
    ops.gc.make_room(ops.blocks.nfree + 4)                       # no spinning on the same blocks
    ops.gc.flush()
    assert volt.counters["read_errors"] + volt.counters["reads"] == reads
    assert ops.gc.counters["stuck_blocks"] == stuck.size

    lba = int(np.flatnonzero(l2p // ops.addr.block_secs == stuck[0])[0])
    before = ops.stats()
    st, _ = n.read(lba)
    assert st == Status.UNRECOVERED_READ                        # 0x0281, no DNR: a retry may work
    after = ops.stats()
    assert after["unrecovered_reads"] == before["unrecovered_reads"] + 1
    assert after["read_retries"] > before["read_retries"]
    assert after["gc_read_errors"] == gc["read_errors"] and after["gc_stuck_blocks"] == stuck.size

    volt.faults.read_error_rate = 0.0                            # the media reads again:
    assert (n.read_versions() == ref).all()                      # every sector as written, none zero
    check_map(ops)


@pytest.mark.device_errors_expected    # GC logs the sector it cannot read
def test_a_block_gc_gave_up_on_is_collected_once_its_valid_count_changes(appnvm_machine):
    """GC looks at a block it left for unreadable sectors again only when the host has
    rewritten or deallocated some of its data; then (the media readable again) it moves
    what is left and erases the block."""
    m = appnvm_machine()
    n = Nvme(m)
    ops, volt = n.ops, m.device.volt
    ref = _garbage_everywhere(n)
    volt.faults.read_error_rate = 1.0
    ops.gc.make_room(ops.blocks.nfree + 1)
    volt.faults.read_error_rate = 0.0
    stuck = np.flatnonzero(ops.gc.stuck >= 0)
    assert stuck.size
    b = int(stuck[0])
    for _ in range(3):                                          # left alone while nothing changed
        ops.gc.make_room(ops.blocks.nfree + 1)
        ops.gc.flush()
    assert ops.blocks.state[b] == BState.CLOSED and ops.map.valid[b] > 0

    lbas = np.flatnonzero(ops.map.l2p // ops.addr.block_secs == b)
    assert n.write(int(lbas[0]), stamp(int(lbas[0]), 3)) == 0   # one sector rewritten elsewhere
    assert n.flush() == 0
    ref[lbas[0]] = 3
    assert ops.gc.pick() == b or ops.map.valid[b] > ops.map.valid[ops.gc.pick()]
    while ops.blocks.state[b] == BState.CLOSED:
        ops.gc.collect(ops.gc.pick())
        ops.gc.flush()
    assert ops.map.valid[b] == 0
    assert (n.read_versions() == ref).all()
    check_map(ops)


def test_transient_read_errors_are_retried_and_counted(appnvm_machine):
    """An error that a retry clears costs a retry, not the data: the read succeeds and
    `read_retries` counts it; nothing is reported unrecovered."""
    m = appnvm_machine()
    n = Nvme(m)
    ref = _garbage_everywhere(n)
    m.device.volt.faults.read_error_rate = 0.1
    got = np.array([n.read_versions(lba, 1)[0] for lba in range(0, n.nlbas, 7)])
    assert (got == ref[::7]).all()
    st = n.ops.stats()
    assert st["read_retries"] > 0 and st["unrecovered_reads"] == 0
