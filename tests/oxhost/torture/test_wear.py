"""The spare blocks a campaign budgets its permanent faults against are the ones the FTL
itself counts: lose that many and it still takes writes, one more and it goes read-only."""
import numpy as np

from oxemu import Faults
from oxhost.lightnvm import Addr, BlockState
from oxhost.stack import open_stack
from oxhost.torture import default_geometry, stamp
from oxhost.torture.wear import allowance, fault_budget, wear


def _open(mode, disk, faults=None):
    return open_stack(mode=mode, disk=str(disk), geometry=default_geometry(), faults=faults)


def test_pblk_spares_are_the_blocks_it_can_lose_before_it_goes_read_only(tmp_path):
    disk = tmp_path / "p.disk"
    st = _open("pblk", disk)
    start = wear(st)
    st.close()
    assert start.grown_bad == 0 and start.spare == 5      # (1408 spare - 744 GC needs) // 128
    for i in range(start.spare + 1):                      # one block more each time, on its own line
        st = _open("pblk", disk)
        try:
            w = wear(st)
            assert (w.grown_bad, w.spare) == (i, start.spare - i)
            assert not st.blockdev.read_only
            ch, lun = st.blockdev.lg.luns[i % 4]
            st.device.bbt_mark([Addr(ch, lun, pl=pl, blk=i) for pl in range(2)], BlockState.GRWN_BAD)
        finally:
            st.close()
    st = _open("pblk", disk)
    try:
        assert st.blockdev.read_only and wear(st) == type(start)(start.spare + 1, 0)
    finally:
        st.close()


def test_appnvm_spares_are_the_blocks_it_can_lose_before_it_goes_read_only(tmp_path):
    """Erases fail on the blocks named (as the FTL reuses them): it retires each; with its
    spares gone and one more retired it goes read-only."""
    st = _open("appnvm", tmp_path / "probe.disk")
    spare = wear(st).spare
    st.close()
    assert spare == 7                                     # 64 blocks, 57 for capacity and reserves
    named = {(ch, lun, blk) for ch in range(2) for lun in range(2) for blk in range(2, 4)}   # 8 blocks
    st = _open("appnvm", tmp_path / "a.disk", Faults(erase_fail=named))
    try:
        bdev = st.blockdev
        n = bdev.size // 4096
        rng = np.random.default_rng(3)
        seen = []
        for g in range(1, 200):
            lba = int(rng.integers(0, n - 256))
            try:
                bdev.write_sectors(lba, stamp.make(np.arange(lba, lba + 256), g))
            except Exception:                             # noqa: BLE001 - read-only, as expected
                break
            seen.append(wear(st))
        w = wear(st)
        read_only = bdev.ftl()["read_only"]
    finally:
        st.abandon()
    assert read_only and w.grown_bad == len(named) == spare + 1 and w.spare == 0
    writable = [x for x in seen if x.grown_bad <= spare]             # up to the spares: writes go on
    assert writable[-1].grown_bad == spare and all(x.spare == spare - x.grown_bad for x in writable)


def test_budget_is_about_half_the_spares_spread_to_the_last_round():
    assert [fault_budget(s) for s in (0, 1, 2, 5, 7)] == [0, 1, 1, 3, 4]
    per_round = [allowance(3, 200, r) for r in range(200)]
    assert per_round[0] == 0 and per_round[-1] == 3 and per_round == sorted(per_round)
    assert [per_round.index(k) for k in (1, 2, 3)] == [66, 133, 199]
    assert allowance(3, 200, 500) == 3
