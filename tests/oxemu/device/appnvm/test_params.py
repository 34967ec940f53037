"""AppNVM tunables (AppNvmParams): GC thresholds and buffer depth in the provisioning,
victim policies, dynamic wear levelling, and GC under every policy keeping the map right."""
import numpy as np
import pytest

from oxemu import AppNvmParams, Geometry, appnvm_exported_sectors
from oxemu.device.appnvm import provisioning
from oxemu.device.appnvm.blocks import BState
from oxemu.device.appnvm.mapping import Addr
from oxemu.device.appnvm.params import GC_POLICIES

from .conftest import GEO, Nvme, check_map


def test_params_defaults_give_the_built_in_provisioning():
    addr = Addr(GEO)
    assert provisioning.plan(addr, params=AppNvmParams()) == provisioning.plan(addr)


def test_capacity_rule_is_pblks_over_every_lun_by_default():
    """AppNVM exports what pblk over every LUN would (floor(blocks x 0.8) whole blocks),
    so the two modes compare on equal terms; its public face is oxemu's."""
    assert appnvm_exported_sectors is provisioning.exported_sectors
    assert appnvm_exported_sectors(Geometry()) * 4096 == 3_435_134_976
    assert appnvm_exported_sectors(GEO) == GEO.total_luns * GEO.nblocks * 80 // 100 * GEO.sectors_per_block
    assert provisioning.plan(Addr(GEO)).nlbas == appnvm_exported_sectors(GEO)
    one = Geometry(nchannels=1, nluns=1, nblocks=10, npages=1, nplanes=1, nsectors=1)
    assert appnvm_exported_sectors(one, 0.3) == 7                       # 10 x 0.7, not 6.9999...
    with pytest.raises(ValueError):
        appnvm_exported_sectors(one, 0.0)


def test_params_set_gc_thresholds_buffer_and_checkpoint_interval():
    addr = Addr(GEO)
    base = provisioning.plan(addr)
    p = provisioning.plan(addr, params=AppNvmParams(gc_foreground=3, gc_background=0.5,
                                                    write_buffer_units_per_lun=4, checkpoint_interval_blocks=2))
    assert p.reserve == base.gc_floor + 3
    assert p.gc_low == p.reserve + GEO.total_luns // 2
    assert p.wb_units == 4 * GEO.total_luns
    assert p.ckpt_every == 2 * GEO.npages


@pytest.mark.parametrize("bad", [dict(gc_policy="lru"), dict(wear_leveling="static"), dict(gc_d=0),
                                 dict(gc_background=1.0)])
def test_params_refuse_bad_values(bad):
    with pytest.raises(ValueError):
        AppNvmParams(**bad)


def _with_garbage(nvme):
    """Fill one block per LUN, then overwrite a different share of each: blocks in fill
    order (oldest first) and their valid counts."""
    ops = nvme.ops
    n = ops.addr.block_secs * GEO.total_luns
    for s in range(0, n, 256):
        assert nvme.write(s, np.zeros(256 * 4096, np.uint8)) == 0
    blocks = sorted({int(ops.map.l2p[lba]) // ops.addr.block_secs for lba in range(n)},
                    key=lambda b: int(ops.blocks.epoch[b]))
    owner = {b: [lba for lba in range(n) if int(ops.map.l2p[lba]) // ops.addr.block_secs == b] for b in blocks}
    for b, k in zip(blocks, (10, 90, 30, 60)):
        for lba in owner[b][:k]:
            assert nvme.write(lba, np.zeros(4096, np.uint8)) == 0
    return blocks


def test_policies_pick_the_victims_they_promise(appnvm_machine):
    nvme = Nvme(appnvm_machine())
    ops = nvme.ops
    blocks = _with_garbage(nvme)
    gc = ops.gc
    assert gc.pick() == blocks[1]                            # greedy: fewest valid (90 overwritten)
    gc.policy = "fifo"
    assert gc.pick() == blocks[0]                            # first written
    gc.policy = "cost-benefit"                               # all of an age: the emptiest wins
    assert gc.pick() == blocks[1]
    ops.blocks.mtime[blocks[1]] = ops.blocks.mtime.max()     # ... unless it was just written
    ops.blocks.mtime[blocks[3]] = 0
    assert gc.pick() == blocks[3]
    for policy in ("random", "d-choice"):
        gc.policy = policy
        picks = {gc.pick() for _ in range(40)}
        assert picks <= set(blocks) and len(picks) > 1


def test_random_policies_follow_their_seed(appnvm_machine):
    picks = []
    for _ in range(2):
        nvme = Nvme(appnvm_machine(appnvm=AppNvmParams(gc_policy="random", gc_seed=7)))
        _with_garbage(nvme)
        picks.append([nvme.ops.gc.pick() for _ in range(10)])
    assert picks[0] == picks[1]


def test_dynamic_wear_levelling_takes_the_least_erased_free_block(appnvm_machine):
    m = appnvm_machine(appnvm=AppNvmParams(wear_leveling="dynamic"))
    ops = Nvme(m).ops
    blocks = ops.blocks
    glun = 1
    free = list(blocks.free[glun])
    ec = m.device.volt.store.erase_count.reshape(GEO.total_luns * GEO.nblocks, -1)
    ec[free, :] = 5
    ec[free[3], :] = 1
    assert blocks.take(glun, 0) == free[3]
    ec[free[5], 0] = 0                                       # a block is as worn as its worst plane
    ec[free[6], :] = 2
    assert blocks.take(glun, 0) == free[6]
    assert blocks.erase_counts()[free[5]] == 5


@pytest.mark.parametrize("policy", [p for p in GC_POLICIES if p != "greedy"] + ["dynamic-wl"])
def test_gc_under_every_policy_keeps_data_and_map(appnvm_machine, policy):
    params = (AppNvmParams(wear_leveling="dynamic") if policy == "dynamic-wl"
              else AppNvmParams(gc_policy=policy, gc_seed=3))
    nvme = Nvme(appnvm_machine(appnvm=params))
    ops = nvme.ops
    rng = np.random.default_rng(5)
    version = {}
    for i in range(int(ops.nlbas * 2.5) // 8):
        lba = int(rng.integers(0, ops.nlbas // 8)) * 8
        data = np.zeros(8 * 4096, np.uint8)
        data[::4096] = i & 0xFF
        assert nvme.write(lba, data) == 0
        version[lba] = i & 0xFF
    assert ops.counters["gc_runs"] > 0
    check_map(ops)
    for lba, v in list(version.items())[:200]:
        st, data = nvme.read(lba, 8)
        assert st == 0 and (data[::4096] == v).all()
    assert (ops.blocks.state != BState.BAD).all()
