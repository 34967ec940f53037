"""A torture session counts media operations across remounts and cuts exactly where it
is told; the workload keeps the oracle in step with the volume through remounts."""
import numpy as np
import pytest

from oxemu import Faults
from oxhost.stack import open_stack
from oxhost.torture import Oracle, default_geometry
from oxhost.torture.workload import Cut, Session, Workload, verify_all


def _opener(mode):
    def open_(disk, faults):
        return open_stack(mode=mode, disk=disk, geometry=default_geometry(), faults=faults)
    return open_


def _run_to_cut(mode, disk, at, remount_every=0):
    """(operations heard, the last operation's kind) when the workload is cut after `at`."""
    heard = []
    s = Session(_opener(mode), str(disk), Faults())
    s.zero(lambda op, first, count: heard.extend([op] * count))
    s.arm(at)
    o = Oracle(s.stack.blockdev.size // 4096)
    w = Workload(o, np.random.default_rng(1), violate=lambda v, when: pytest.fail(f"{when}: {v}"),
                 remount_every=remount_every)
    with pytest.raises(Cut):
        w.run(s, 100_000)
    assert not s.powered
    s.abandon()
    return heard, w, s


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_session_cut_interrupts_exactly_the_operation_after_the_armed_count(mode, tmp_path):
    heard, _, _ = _run_to_cut(mode, tmp_path / "a.disk", 700)
    # the observer hears of the batch holding operation 701 before it runs; nothing after it
    assert len(heard) > 700
    again, _, _ = _run_to_cut(mode, tmp_path / "b.disk", 700)
    assert again[:701] == heard[:701]                    # the same workload, the same operations


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_session_remounts_count_on_and_a_cut_can_land_in_the_next_power_on(mode, tmp_path):
    # where the first remount's power-on starts, in a run without a cut
    s = Session(_opener(mode), str(tmp_path / "a.disk"), Faults())
    seen, kinds = [], []

    def hear(op, first, count):
        seen.extend([s.remounts] * count)
        kinds.extend([op] * count)
    s.zero(hear)
    w = Workload(Oracle(s.stack.blockdev.size // 4096), np.random.default_rng(1),
                 violate=lambda v, when: pytest.fail(f"{when}: {v}"), remount_every=300)
    w.run(s, 300)
    s.stack.close()
    assert s.remounts >= 1
    j = seen.index(1)                                   # the new machine's first operation
    # cut exactly there: the remount's open (its recovery) is what the cut interrupts
    heard, w2, cut = _run_to_cut(mode, tmp_path / "b.disk", j, remount_every=300)
    assert cut.remounts == 1 and len(heard) > j and heard[:j + 1] == kinds[:j + 1]
    s = Session(_opener(mode), str(tmp_path / "b.disk"), Faults())
    try:
        o = w2.oracle
        bad = []
        verify_all(s.stack.blockdev, o, lambda v, when: bad.append(v), settle=True)
        assert bad == []                                # flushed by the clean stop, all there
    finally:
        s.stack.close()
