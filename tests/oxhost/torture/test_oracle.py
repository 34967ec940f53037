"""The torture oracle and its self-describing sectors: every way a read can be wrong is
caught, and nothing right is flagged."""
import numpy as np

from oxhost.torture import Oracle
from oxhost.torture.stamp import Verdict, classify, make


def test_stamp_classify_tells_stamps_zeros_and_garbage_apart():
    data = make(np.arange(10, 14), 7).reshape(4, 4096).copy()
    data[1] = 0                                    # a zero sector
    data[2, 100] ^= 1                              # one flipped bit
    verdict, gens = classify(data, np.arange(10, 14))
    assert verdict.tolist() == [Verdict.STAMP, Verdict.ZERO, Verdict.GARBAGE, Verdict.STAMP]
    assert gens.tolist() == [7, -1, -1, 7]


def test_stamp_of_another_lba_is_garbage():
    data = make(np.array([5]), 3)                  # a sector written for LBA 5 ...
    verdict, _ = classify(data, np.array([6]))     # ... read back at LBA 6: misdirected
    assert verdict.tolist() == [Verdict.GARBAGE]


def test_oracle_accepts_the_flushed_version_or_newer_and_flags_older():
    o = Oracle(8)
    g1 = o.next_gen()
    o.wrote(0, 8, g1)
    o.flushed()
    g2 = o.next_gen()
    o.wrote(0, 4, g2)                              # not flushed: g1 or g2 may come back
    assert o.check(0, make(np.arange(8), g1)) == []
    assert o.check(0, np.concatenate([make(np.arange(4), g2), make(np.arange(4, 8), g1)])) == []
    old = Oracle(8)
    old.wrote(0, 8, old.next_gen())
    old.flushed()
    older = make(np.arange(8), 0)                  # a version from before the flush
    old.wrote(0, 8, old.next_gen())
    old.flushed()
    kinds = {v.kind for v in old.check(0, older)}
    assert kinds == {"older"}


def test_oracle_flags_zeros_for_flushed_data_and_accepts_zeros_after_a_discard():
    o = Oracle(4)
    o.wrote(0, 4, o.next_gen())
    o.flushed()
    assert [v.kind for v in o.check(0, np.zeros(4 * 4096, np.uint8))] == ["zeros"] * 4
    o.discarded(0, 2, o.next_gen())
    o.flushed()
    v = o.check(0, np.zeros(4 * 4096, np.uint8))
    assert [x.lba for x in v] == [2, 3]


def test_oracle_flags_unreadable_sectors_and_versions_never_written():
    o = Oracle(2)
    g = o.next_gen()
    o.wrote(0, 2, g)
    v = o.check(0, make(np.arange(2), g + 5), unreadable=np.array([False, True]))
    assert [(x.lba, x.kind) for x in v] == [(0, "future"), (1, "unreadable")]


def test_oracle_settles_on_what_survived_a_stop():
    o = Oracle(1)
    g1 = o.next_gen()
    o.wrote(0, 1, g1)
    o.flushed()
    g2 = o.next_gen()
    o.wrote(0, 1, g2)                              # lost at the cut
    assert o.check(0, make(np.arange(1), g1), settle=True) == []
    assert [v.kind for v in o.check(0, make(np.arange(1), g2))] == ["future"]   # no resurrection
