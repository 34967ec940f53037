"""AppNVM bad-block handling (SPEC 6): factory-bad blocks are never used, a block whose
erase fails is retired, a failed program is placed again elsewhere and its block retired
once GC has emptied it. Retired blocks are grown-bad in the media's bad block table."""
import numpy as np

from oxemu import Faults
from oxemu.device.appnvm.blocks import BState
from oxemu.wire import BlockState

from .conftest import Nvme, check_map, stamp


def _churn(n, writes, seed=1, ref=None):
    """Prefill, then random single-sector overwrites; returns the reference versions."""
    cap = n.nlbas
    if ref is None:
        ref = np.ones(cap, dtype=np.int64)
        for s in range(0, cap, 256):
            k = min(256, cap - s)
            assert n.write(s, stamp(np.arange(s, s + k), 1)) == 0
    rng = np.random.default_rng(seed)
    for i, lba in enumerate(rng.integers(0, cap, writes).tolist(), int(ref.max()) + 1):
        assert n.write(lba, stamp(lba, i)) == 0
        ref[lba] = i
    return ref


def _block_id(ops, ch, lun, blk):
    return (ch * ops.addr.nluns + lun) * ops.addr.nblocks + blk


def test_factory_bad_blocks_are_never_written(appnvm_machine):
    bad = {(0, 0, 2, 1), (1, 1, 5, 0), (0, 1, 0, 0)}
    m = appnvm_machine(faults=Faults(factory_bad=bad))
    n = Nvme(m)
    ops = n.ops
    ids = [_block_id(ops, ch, lun, blk) for ch, lun, blk, _pl in bad]
    assert (ops.blocks.state[ids] == BState.BAD).all()
    assert ops.stats()["factory_bad_blocks"] == 3 and ops.stats()["good_blocks"] == 61
    ref = _churn(n, n.nlbas)
    assert (n.read_versions() == ref).all()
    assert m.device.volt.counters["program_fails"] == 0
    assert (ops.blocks.wp[ids] == 0).all() and (ops.map.valid[ids] == 0).all()
    assert not m.device.volt.store.next_page.reshape(-1, 2)[ids].any()
    check_map(ops)


def test_a_block_whose_erase_fails_is_retired(appnvm_machine):
    m = appnvm_machine(faults=Faults(erase_fail={(0, 1, 4)}, erase_fail_rate=0.0005, seed=5))
    n = Nvme(m)
    ops = n.ops
    ref = _churn(n, 2 * n.nlbas)
    assert (n.read_versions() == ref).all()
    st = ops.stats()
    assert st["erase_fails"] >= 1 and st["retired_blocks"] == st["erase_fails"]
    b = _block_id(ops, 0, 1, 4)
    assert ops.blocks.state[b] == BState.BAD
    assert (m.device.volt.store.bbt[0, 1, 4] == BlockState.GRWN_BAD).all()
    bad = np.flatnonzero(ops.blocks.state == BState.BAD)
    assert (ops.map.valid[bad] == 0).all()
    check_map(ops)


def test_a_failed_program_is_placed_again_and_its_block_retired(appnvm_machine):
    m = appnvm_machine(faults=Faults(program_fail={(0, 0, 1, 3)}))
    n = Nvme(m)
    ops = n.ops
    b = _block_id(ops, 0, 0, 1)
    assert ops.blocks.open_user[0] == -1 and ops.blocks.free[0][0] == b     # LUN 0's first user block
    lbas = np.arange(0, 8 * 4 * 6)                                   # six stripes of units
    assert n.write(0, stamp(lbas, 1)) == 0
    assert ops.stats()["program_fails"] == 1
    assert ops.blocks.doomed[b] and ops.blocks.state[b] == BState.CLOSED
    assert (n.read_versions(0, lbas.size) == 1).all()
    check_map(ops)
    while ops.blocks.state[b] != BState.BAD:                         # GC empties it, then retires it
        ops.gc.make_room(ops.blocks.nfree + 1)
        ops.gc.flush()
    assert (m.device.volt.store.bbt[0, 0, 1] == BlockState.GRWN_BAD).all()
    assert (n.read_versions(0, lbas.size) == 1).all()
    check_map(ops)


def test_random_program_failures_lose_nothing(appnvm_machine):
    m = appnvm_machine(faults=Faults(program_fail_rate=0.0004, seed=2))
    n = Nvme(m)
    ref = _churn(n, n.nlbas)
    assert n.ops.stats()["program_fails"] > 0
    assert (n.read_versions() == ref).all()
    check_map(n.ops)


def test_read_errors_are_retried(appnvm_machine):
    m = appnvm_machine(faults=Faults(read_error_rate=0.02, seed=7))
    n = Nvme(m)
    ref = _churn(n, 2000)
    assert (n.read_versions() == ref).all()
    assert n.ops.stats()["read_retries"] > 0


def test_worn_out_device_goes_read_only_and_keeps_what_it_acknowledged(appnvm_machine):
    """Program failures retire blocks until the spare is gone: then the device is
    read-only (writes fail with NS_WRITE_PROTECTED | DNR), and every acknowledged write
    still reads back."""
    m = appnvm_machine(faults=Faults(program_fail_rate=0.01, seed=3))
    n = Nvme(m)
    cap = n.nlbas
    ref = np.zeros(cap, dtype=np.int64)
    rng = np.random.default_rng(8)
    status = 0
    for i, lba in enumerate(rng.integers(0, cap, 20 * cap).tolist(), 1):
        status = n.write(lba, stamp(lba, i))
        if status:
            break
        ref[lba] = i
    assert status == 0x4020                                 # write protected: out of spare blocks
    assert n.ops.read_only
    st = n.ops.stats()
    assert st["program_fails"] > 0 and st["good_blocks"] - st["min_good_blocks"] < st["program_fails"]
    got = n.read_versions()
    assert got[lba] in (ref[lba], i)                        # the failed write: either version
    got[lba] = ref[lba]
    assert (got == ref).all()


def test_a_failed_first_page_does_not_look_like_foreign_data_at_restart(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk, faults=Faults(program_fail={(0, 0, 1, 0)}))
    n = Nvme(m)
    assert n.write(0, stamp(np.arange(64), 1)) == 0
    assert n.ops.stats()["program_fails"] == 1
    n.shutdown()
    m.close()
    n = Nvme(appnvm_machine(volt=0, disk=disk))
    assert (n.read_versions(0, 64) == 1).all()
    check_map(n.ops)
