"""The mapping owner: the L2P's empty / write-buffer / media states, valid counts, release
positions and line LBA lists, changed only through its named operations, and check()."""
import numpy as np
import pytest

from oxhost.pblk import InvariantError
from oxhost.pblk.l2p import EMPTY, L2P, cache_code, cache_slot
from oxhost.pblk.metadata import ADDR_TRIM

SPL = 8          # sectors per line in these tables (all of them listed)


def table(nsectors=16, nlines=4):
    return L2P(nsectors, nlines, SPL, SPL)


def test_l2p_starts_empty():
    t = L2P(100)
    assert (t.lookup(0, 100) == EMPTY).all()


def test_l2p_cache_codes_round_trip_to_slots():
    slots = np.array([0, 1, 2047])
    codes = cache_code(slots)
    assert (codes <= -2).all()
    assert (cache_slot(codes) == slots).all()


def test_l2p_commit_maps_entries_still_pointing_at_their_slot_and_counts_them_valid():
    """An LBA rewritten while its older entry waited in the buffer keeps the newer entry."""
    t = table()
    t.write(1, 2, np.array([10, 11]), pos=12)
    t.write_one(3, 99, pos=100)                       # LBA 3 now lives in slot 99, not 12
    n = t.commit(0, np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([10, 11, 12]))
    assert n == 2
    assert t.map[[1, 2, 3]].tolist() == [0, 1, int(cache_code(99))]
    assert t.vsc.tolist() == [2, 0, 0, 0]
    assert t.lba[0, :3].tolist() == [1, 2, 3]         # every programmed sector is listed


def test_l2p_overwrite_invalidates_the_media_copy_and_holds_its_line_until_the_write_lands():
    t = table()
    t.write(0, 4, np.arange(4), pos=4)
    t.commit(1, np.arange(4), np.arange(4), np.arange(4))
    t.write_one(2, 5, pos=6)
    assert t.vsc[1] == 3 and t.inval_pos[1] == 6
    assert not t.releasable(1, sync=5) and not t.releasable(1, sync=6)   # still 3 valid
    t.write(0, 4, np.arange(6, 10), pos=10)
    assert t.vsc[1] == 0 and not t.releasable(1, sync=9) and t.releasable(1, sync=10)


def test_l2p_commit_of_a_failed_program_lists_nothing_and_maps_nothing():
    t = table()
    t.write(0, 2, np.array([0, 1]), pos=2)
    t.commit(0, np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), ok=np.array([True, False]))
    assert t.map[0] == 0 and t.map[1] == cache_code(1)
    assert t.lba[0, :2].tolist() == [0, EMPTY]


def test_l2p_requeue_defers_lines_invalidated_after_the_failed_entry():
    """A line whose newer copies failed to program must not be erased before they land."""
    t = table()
    t.write(0, 2, np.array([0, 1]), pos=2)
    t.commit(2, np.array([0, 1]), np.array([0, 1]), np.array([0, 1]))
    t.write(0, 2, np.array([2, 3]), pos=4)           # line 2 invalid once position 4 is synced
    assert t.cached_at(np.array([0, 1]), np.array([2, 3])).tolist() == [True, True]
    t.requeue(np.array([0, 1]), np.array([7, 8]), failed_pos=2, pos=9)
    assert t.map[:2].tolist() == cache_code(np.array([7, 8])).tolist()
    assert not t.releasable(2, sync=4) and t.releasable(2, sync=9)


def test_l2p_discard_returns_the_mapped_runs_and_holds_lines_until_the_records_are_placed():
    t = table()
    t.write(0, 6, np.arange(6), pos=6)
    t.commit(3, np.arange(6), np.arange(6), np.arange(6))
    t.discard(2, 1, pos=7)                           # volatile: released from position 7
    rec = t.discard(0, 8, pos=None)                  # 2 is unmapped already: no record for it
    assert rec.tolist() == [[0, 2], [3, 3]]
    assert t.vsc[3] == 0 and t.held[3]
    assert not t.releasable(3, sync=100)
    t.trims_placed(12)
    assert not t.held.any() and not t.releasable(3, sync=11) and t.releasable(3, sync=12)


def test_l2p_gc_move_takes_valid_sectors_off_the_victim():
    t = table()
    t.write(0, 3, np.arange(3), pos=3)
    t.commit(1, np.arange(3), np.arange(3), np.arange(3))
    t.write_one(1, 3, pos=4)                         # LBA 1 overwritten: no longer on line 1
    assert t.still_at(1, np.arange(3)).tolist() == [True, False, True]
    t.gc_move(1, np.array([0, 2]), np.array([0, 2]), np.array([5, 6]), pos=7)
    assert t.vsc[1] == 0 and t.inval_pos[1] == 7
    assert t.map[[0, 2]].tolist() == cache_code(np.array([5, 6])).tolist()


def test_l2p_replay_applies_trim_records_between_the_data_around_them():
    t = table()
    t.replay_line(0, np.array([3, 4, ADDR_TRIM, 5, EMPTY, 3, EMPTY, EMPTY]), {2: np.array([[3, 3]])})
    assert t.map[3] == 5                             # written again after the trim
    assert t.map[4] == EMPTY                         # trimmed after its write
    assert t.map[5] == 3                             # written after the trim
    t.replay_line(1, np.array([ADDR_TRIM] + [EMPTY] * 7), {0: np.array([[0, 16]])})
    assert (t.map == EMPTY).all()                    # a later line's trim unmaps all of them


def test_l2p_replay_later_address_wins_and_ignores_lbas_outside_the_volume():
    t = table()
    t.replay_line(0, np.array([3, 4, 3, EMPTY, 99, EMPTY, EMPTY, EMPTY]), {})
    assert t.map[3] == 2 and t.map[4] == 1
    t.recount()
    assert t.vsc.tolist() == [2, 0, 0, 0]


def test_l2p_valid_counts_per_line():
    t = L2P(10, 3, 512)
    lbas = np.full((3, 512), EMPTY)
    lbas[0, :2], lbas[1, 0], lbas[2, 6] = [0, 1], 2, 3
    for line in range(3):
        t.replay_line(line, lbas[line], {})
    t.write_one(4, 0, pos=1)                             # in the buffer: on no line
    assert t.map[:5].tolist() == [0, 1, 512, 1030, cache_code(0)]
    assert t.valid_counts().tolist() == [2, 1, 1]


def test_l2p_hands_out_read_only_views():
    """Only the L2P's operations change the map, the valid counts, the release positions
    and the LBA lists: what callers get refuses assignment."""
    t = table()
    t.write(0, 2, np.arange(2), pos=2)
    t.commit(0, np.arange(2), np.arange(2), np.arange(2))
    for view in (t.map, t.vsc, t.inval_pos, t.held, t.lba, t.lookup(0, 4), t.map[1:3], t.lba[0]):
        assert not view.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        np.add(t.vsc, 1, out=t.vsc)
    assert t.map[:2].tolist() == [0, 1] and t.vsc.tolist() == [2, 0, 0, 0]
    t.mark_unreadable([1])
    assert t.unreadable == frozenset({1}) and not hasattr(t.unreadable, "add")
    t.check()


def test_l2p_check_finds_valid_counts_that_disagree_with_the_table():
    t = table()
    t.write(0, 2, np.arange(2), pos=2)
    t.commit(0, np.arange(2), np.arange(2), np.arange(2))
    t.check()
    t._vsc[0] += 1                                   # what a bug in an operation would do
    with pytest.raises(InvariantError, match="valid counts"):
        t.check()


def test_l2p_check_finds_a_mapping_its_line_list_does_not_name():
    t = table()
    t.write(0, 2, np.arange(2), pos=2)
    t.commit(0, np.arange(2), np.arange(2), np.arange(2))
    t._lba[0, 1] = 7                                 # what a bug in an operation would do
    with pytest.raises(InvariantError, match="listed for another LBA"):
        t.check()
