"""AppNVM garbage collection: greedy victim choice, relocation of valid data only, and
GC keeping up with sustained random overwrite (SPEC 6)."""
import numpy as np
import pytest

from oxemu import Geometry
from oxemu.device.appnvm.blocks import BState
from oxhost.torture import Config, Exhaustive
from oxhost.torture.disk import copy_sparse
from oxhost.torture.workload import Cut, Session

from .conftest import GEO, Nvme, check_map, stamp


def _block_of(ops, lba):
    return int(ops.map.l2p[lba]) // ops.addr.block_secs


def _fill_first_blocks(nvme):
    """One full block per LUN (128 sectors each), written sequentially: version 1."""
    n = nvme.ops.addr.block_secs * GEO.total_luns
    for s in range(0, n, 256):
        assert nvme.write(s, stamp(np.arange(s, s + 256), 1)) == 0
    blocks = sorted({_block_of(nvme.ops, lba) for lba in range(n)})
    assert len(blocks) == GEO.total_luns
    assert (nvme.ops.blocks.state[blocks] == BState.CLOSED).all()
    return n, blocks


def test_gc_picks_the_closed_block_with_fewest_valid_sectors(nvme):
    ops = nvme.ops
    n, blocks = _fill_first_blocks(nvme)
    owner = {b: [lba for lba in range(n) if _block_of(ops, lba) == b] for b in blocks}
    for b, k in zip(blocks, (10, 90, 30, 60)):             # overwrite k sectors of each block
        nvme.write_stamped(owner[b][:k], 2)
    assert ops.gc.pick() == blocks[1]
    assert ops.map.valid[blocks[1]] == ops.addr.block_secs - 90
    before = ops.gc.counters["moved"]
    ops.gc.make_room(ops.blocks.nfree + 1)
    ops.gc.flush()
    assert ops.counters["gc_runs"] >= 1
    assert ops.blocks.state[blocks[1]] == BState.FREE           # erased and reusable
    assert ops.gc.counters["moved"] - before >= ops.addr.block_secs - 90
    check_map(ops)
    want = np.ones(n, dtype=np.int64)
    for b, k in zip(blocks, (10, 90, 30, 60)):
        want[owner[b][:k]] = 2
    assert (nvme.read_versions(0, n) == want).all()


def test_gc_moves_only_valid_sectors(nvme):
    ops = nvme.ops
    n, blocks = _fill_first_blocks(nvme)
    victim = blocks[0]
    lbas = [lba for lba in range(n) if _block_of(ops, lba) == victim]
    nvme.write_stamped(lbas[:100], 2)
    assert nvme.flush() == 0
    g0 = ops.stats()["gc_sectors"]
    assert ops.gc.pick() == victim
    ops.gc.collect(victim)
    ops.gc.flush()
    assert ops.stats()["gc_sectors"] - g0 == 28
    assert ops.map.valid[victim] == 0 and ops.blocks.state[victim] == BState.FREE
    check_map(ops)
    v = nvme.read_versions(0, n)
    assert (v[lbas[:100]] == 2).all() and (v[lbas[100:]] == 1).all()


def test_gc_relocates_the_durable_copy_of_a_buffered_overwrite(nvme):
    ops = nvme.ops
    _fill_first_blocks(nvme)
    victim = _block_of(ops, 5)
    nvme.write_stamped([5], 2)                              # buffered: the victim's copy stays valid
    ops.gc.collect(victim)
    ops.gc.flush()
    check_map(ops)
    assert ops.blocks.state[victim] == BState.FREE
    j = int(ops.map.l2p[5]) - 0xFFFF_FF00
    assert ops.map.p2l[ops.map.slot_prev[j]] == 5           # now in the GC block
    assert nvme.read_versions(5, 1).tolist() == [2]
    assert nvme.flush() == 0
    check_map(ops)
    assert nvme.read_versions(5, 1).tolist() == [2]


def test_sustained_random_overwrite_of_twice_the_capacity_loses_nothing(nvme):
    ops = nvme.ops
    cap = nvme.nlbas
    ref = np.zeros(cap, dtype=np.int64)
    for s in range(0, cap, 256):                             # prefill
        k = min(256, cap - s)
        assert nvme.write(s, stamp(np.arange(s, s + k), 1)) == 0
    ref[:] = 1
    rng = np.random.default_rng(11)
    written = 0
    v = 1
    min_free = ops.blocks.nfree
    while written < 2 * cap:
        v += 1
        if v % 50 == 0:                                      # now and then a multi-sector write
            n = int(rng.integers(2, 40))
            s = int(rng.integers(0, cap - n))
            assert nvme.write(s, stamp(np.arange(s, s + n), v)) == 0
            ref[s:s + n] = v
            written += n
        else:
            lba = int(rng.integers(0, cap))
            assert nvme.write(lba, stamp(lba, v)) == 0
            ref[lba] = v
            written += 1
        min_free = min(min_free, ops.blocks.nfree)
    assert (nvme.read_versions() == ref).all()
    check_map(ops)
    st = ops.stats()
    assert st["gc_victims"] > 0 and st["gc_sectors"] > 0
    assert st["waf"] >= 1.0 and st["waf_data"] >= 1.0
    assert min_free >= ops.prov.reserve - 1                 # GC kept ahead of the writes
    print(f"\nAppNVM 2x overwrite on {GEO.describe()}: WA {st['waf']:.2f} (without metadata {st['waf_data']:.2f}), "
          f"{st['gc_victims']} victims, {st['checkpoints']} checkpoints")


def test_gc_keeps_up_on_the_smallest_geometry_at_pblks_capacity(appnvm_machine):
    """Geometry.small() at 25 of 32 blocks exported: tight, slow, but never stuck."""
    n = Nvme(appnvm_machine(geometry=Geometry.small()))
    cap = n.nlbas
    assert cap == 25 * 128
    rng = np.random.default_rng(2)
    ref = np.zeros(cap, dtype=np.int64)
    for i, lba in enumerate(rng.integers(0, cap, cap).tolist(), 1):
        assert n.write(lba, stamp(lba, i)) == 0
        ref[lba] = i
    assert (n.read_versions() == ref).all()
    check_map(n.ops)


def test_gc_restarts_after_a_cut_tore_its_unit_and_left_only_the_metadatas_block(tmp_path):
    """`ox torture --mode appnvm --seed 4 --exhaustive 2297 --from-op 2297 --faults
    program,erase,read`: the cut tears the unit GC is programming into its fresh block while
    one block is free and two victims wait for that unit. After recovery the torn block and
    the victims are closed blocks, the one free block is the metadata's, and GC had no room
    of its own: the next writes found no place and the device went read-only with blocks
    full of garbage. GC now restarts in the metadata's last block (the victim's release
    gives one back)."""
    ex = Exhaustive("appnvm", Config(modes=("appnvm",), seed=4, faults=("program", "erase", "read")),
                    2297, str(tmp_path))
    ex._age()
    ex._reference()
    copy_sparse(ex.snapshot, ex.disk)
    oracle = ex.oracle.copy()
    s = Session(ex._open, ex.disk, ex._faults())
    s.zero()
    s.arm(2296)
    with pytest.raises(Cut):
        ex._workload(oracle, lambda v, when: pytest.fail(f"{when}: {v}")).run(s, 10**6)
    s.abandon()
    st = ex._open(ex.disk, None)
    try:
        ops = st.machine.device.mode
        assert ops.blocks.nfree <= ops.gc.floor() and ops.blocks.open_gc < 0    # the state of the bug
        bdev = st.blockdev
        for lba in range(0, 2048, 64):                   # writes after recovery find room
            bdev.write_sectors(lba, stamp(np.arange(lba, lba + 64), 9))
        bdev.flush()
        assert not ops.read_only and ops.gc.counters["restarts"] >= 1
        assert ops.blocks.nfree > ops.gc.floor()
        check_map(ops)
    finally:
        st.close()


def test_gc_staging_a_victim_in_one_read_matches_page_by_page_exactly(appnvm_machine):
    """GC reads a victim's pages with one read_pages call when they all read fine; a traced
    device reads page by page (each MMGR traced). The same overwrite on both ends in the same
    map, media counters and modeled times."""
    import io

    def run(debug: int):
        m = appnvm_machine(timing="model", debug=debug, trace_stream=io.StringIO())
        nvme = Nvme(m)
        cap = nvme.nlbas
        for s in range(0, cap, 256):
            assert nvme.write(s, stamp(np.arange(s, min(cap, s + 256)), 1)) == 0
        rng = np.random.default_rng(5)
        for v, lba in enumerate(rng.integers(0, cap, cap).tolist(), start=2):
            assert nvme.write(lba, stamp(lba, v)) == 0
        ops = nvme.ops
        return (ops.map.l2p.copy(), ops.map.valid.copy(), dict(ops.media.volt.counters), ops.stats()["gc_sectors"],
                m.virtual_ns, nvme.read_versions())

    fast, paged = run(0), run(1)
    assert fast[3] > 0                                        # GC ran
    assert (fast[0] == paged[0]).all() and (fast[1] == paged[1]).all()
    assert fast[2] == paged[2] and fast[3:5] == paged[3:5]
    assert (fast[5] == paged[5]).all()
