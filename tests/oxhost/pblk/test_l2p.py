"""The L2P table: empty / write-buffer / media states and how they change."""
import numpy as np

from oxhost.pblk.l2p import EMPTY, L2P, cache_code, cache_slot


def test_l2p_starts_empty():
    t = L2P(100)
    assert (t.lookup(0, 100) == EMPTY).all()


def test_l2p_cache_codes_round_trip_to_slots():
    slots = np.array([0, 1, 2047])
    codes = cache_code(slots)
    assert (codes <= -2).all()
    assert (cache_slot(codes) == slots).all()


def test_l2p_replace_range_returns_media_addresses_left():
    t = L2P(16)
    t.map[2:6] = [100, EMPTY, cache_code(7), 205]
    old = t.replace_range(2, 4, cache_code(np.arange(4)))
    assert sorted(old.tolist()) == [100, 205]
    assert (t.map[2:6] == cache_code(np.arange(4))).all()


def test_l2p_commit_updates_only_entries_still_pointing_at_their_slot():
    t = L2P(8)
    t.map[[1, 2, 3]] = cache_code(np.array([10, 11, 99]))    # LBA 3 was rewritten into slot 99
    upd = t.commit(np.array([1, 2, 3]), np.array([10, 11, 12]), np.array([500, 501, 502]))
    assert upd.tolist() == [True, True, False]
    assert t.map[[1, 2, 3]].tolist() == [500, 501, int(cache_code(99))]


def test_l2p_move_if_skips_overwritten_lbas():
    t = L2P(8)
    t.map[[4, 5]] = [40, cache_code(3)]
    ok = t.move_if(np.array([4, 5]), np.array([40, 50]), np.array([cache_code(1), cache_code(2)]))
    assert ok.tolist() == [True, False]
    assert t.map[4] == cache_code(1) and t.map[5] == cache_code(3)


def test_l2p_load_line_later_address_wins():
    t = L2P(10)
    t.load_line(np.array([3, 4, 3, -1, 12]), np.array([100, 101, 102, 103, 104]))
    assert t.map[3] == 102 and t.map[4] == 101
    assert (t.map[[0, 1, 2, 5]] == EMPTY).all()        # -1 and out-of-range LBAs are ignored
    t.load_line(np.array([4]), np.array([900]))         # a later line overrides
    assert t.map[4] == 900


def test_l2p_valid_counts_per_line():
    t = L2P(10)
    t.map[:5] = [0, 1, 512, 1030, cache_code(0)]
    assert t.valid_counts(512, 3).tolist() == [2, 1, 1]
