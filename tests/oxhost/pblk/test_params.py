"""pblk's tunables (PblkParams): capacity from over-provisioning, the rate limiter's
thresholds, the write buffer's size, and the GC victim policies."""
import numpy as np
import pytest

from oxhost.lightnvm import Device
from oxhost.pblk import Pblk, PblkParams
from oxhost.pblk.gc import Gc
from oxhost.pblk.lines import Line, LineGeometry, LineState
from oxhost.pblk import rl
from oxhost.pblk.params import GC_POLICIES, exported_sectors, spare_at_start, spare_need

from .conftest import small_geometry, stamp


def _pblk(make_machine, params=None, geometry=None):
    m = make_machine(geometry=geometry or small_geometry(), ram_mib=64)
    return Pblk(Device.open(m), params=params)


def test_defaults_are_pblk_4_12(make_machine):
    p = _pblk(make_machine)
    lg = p.lg
    assert p.size == lg.nchunks * 80 // 100 * lg.sec_per_chunk * 4096
    assert p.rb.n == 2048
    assert (p.rl.high, p.rl.low, p.rl.rsv) == (max(p.rl.total // 8, 2 * p.rl.rsv), max(p.rl.total // 10, p.rl.rsv),
                                               p.lm.reserve_secs)
    assert p.gc.policy == "greedy"


def test_op_sets_the_exported_capacity(make_machine):
    geo = small_geometry()
    for op, keep in ((0.1, 57), (0.3, 44), (0.2, 51)):
        lg = LineGeometry(Device.open(make_machine(geometry=geo, ram_mib=64)).geo, op=op)
        assert lg.capacity_sectors == keep * lg.sec_per_chunk
    p = _pblk(make_machine, PblkParams(op=0.3))
    assert p.size == 44 * p.lg.sec_per_chunk * 4096


def test_capacity_rule_is_pblk_4_12s_over_provisioning():
    """pblk_set_provision (kernels 4.12-4.15): 80 % of the chunks, whole chunks, with op
    read as the decimal it prints as."""
    assert exported_sectors(1024, 1024) * 4096 == 3_435_134_976        # the default geometry
    assert exported_sectors(1024, 1024) == 1024 * 80 // 100 * 1024
    assert exported_sectors(10, 1, 0.3) == 7                            # 10 x 0.7, not 6.9999...
    assert exported_sectors(10, 1, 0.01) == 9
    with pytest.raises(ValueError):
        exported_sectors(10, 1, 1.0)


def test_spare_rule_at_start_is_the_read_only_threshold_of_a_new_target(make_machine):
    """spare_at_start predicts from the geometry alone what a new target sees: its spare
    data sectors and the need (spare_need of its GC reserve) that turns it read-only."""
    geo = small_geometry()
    for op, rsv_lines in ((0.2, 1), (0.3, 2)):
        p = _pblk(make_machine, PblkParams(op=op, gc_foreground=rsv_lines), geometry=geo)
        spare, need, data = spare_at_start(geo, p.lg.capacity_sectors, rsv_lines)
        assert data == int(p.lm.lines[0].data_units.size) * p.lg.unit_secs
        assert spare == p.stats()["spare_sectors"]
        assert need == spare_need(p.lm.reserve_secs) == p.lm.reserve_secs * 3 // 2
        assert not p.read_only


def test_rate_limiter_thresholds_are_pblk_rl_init():
    assert rl.thresholds(80_000, 500) == (10_000, 8_000, 500)            # 1/8, 1/10, a line
    assert rl.thresholds(3_000, 500) == (1_000, 500, 500)                # at least 2 lines, 1 line
    assert rl.thresholds(10_000, 100, 0.25, 5, 2) == (2_500, 2_000, 200)


def test_rate_limiter_and_buffer_follow_the_params(make_machine):
    p = _pblk(make_machine, PblkParams(gc_background=0.5, rl_low_div=4, gc_foreground=2, write_buffer_entries=1000))
    assert p.rb.n == 1000 - 1000 % p.lg.unit_secs
    per_line = p.lm.reserve_secs // 2
    assert p.rl.rsv == 2 * per_line == p.lm.reserve_secs
    assert p.rl.high == max(p.rl.total // 2, 2 * p.rl.rsv)
    assert p.rl.low == max(p.rl.total // 4, p.rl.rsv)


def test_params_refuse_bad_values():
    for bad in (dict(op=0), dict(gc_policy="lru"), dict(gc_d=0), dict(gc_background=1.2)):
        with pytest.raises(ValueError):
            PblkParams(**bad)


def _lines(p, specs):
    """Closed lines with (valid sectors, seq), laid out on the target's geometry."""
    lines, vsc = [], np.zeros(len(specs), np.int64)
    for i, (valid, seq) in enumerate(specs):
        ln = Line(i, p.lg.nluns)
        ln.set_layout(p.lg, np.ones(p.lg.nluns, bool))
        ln.state, ln.seq = LineState.CLOSED, seq
        vsc[i] = valid
        lines.append(ln)
    return lines, vsc


def test_policies_pick_the_victims_they_promise(make_machine):
    p = _pblk(make_machine)
    full = p.lm.reserve_secs
    lines, vsc = _lines(p, [(full - 50, 1), (full - 300, 5), (full, 2), (full - 280, 9)])
    gc = p.gc
    assert gc.choose_policy(lines, vsc).id == 1                  # greedy
    gc.policy = "fifo"
    assert gc.choose_policy(lines, vsc).id == 0                  # oldest with garbage (line 2 has none)
    gc.policy = "cost-benefit"
    p.lm.next_seq = 10
    assert gc.choose_policy(lines, vsc).id == 1                  # old enough and emptiest
    lines[1].seq = 9                                             # ... until it is the youngest
    lines[0].seq = 0
    vsc[0] = full - 250
    assert gc.choose_policy(lines, vsc).id == 0
    for policy in ("random", "d-choice"):
        gc.policy = policy
        picks = {gc.choose_policy(lines, vsc).id for _ in range(40)}
        assert 2 not in picks and len(picks) > 1
    assert Gc.choose(lines, vsc).id == 1                         # the static greedy choice stays


@pytest.mark.parametrize("policy", [p for p in GC_POLICIES if p != "greedy"])
def test_gc_under_every_policy_keeps_data(make_machine, policy):
    p = _pblk(make_machine, PblkParams(gc_policy=policy, gc_seed=1))
    n = p.size // 4096
    rng = np.random.default_rng(2)
    tag = {}
    for i in range(n * 2 // 8):
        lba = int(rng.integers(0, n // 8)) * 8
        p.write_sectors(lba, stamp(lba, 8, tag=i))
        tag[lba] = i
    p.flush()
    assert p.c["gc_runs"] > 0
    p.check()
    for lba, t in list(tag.items())[:300]:
        assert (p.read_sectors(lba, 8) == stamp(lba, 8, tag=t)).all()
