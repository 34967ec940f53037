"""TRIM sectors: the on-media record format, runs of LBAs, and how pending discards batch."""
import numpy as np
import pytest

from oxhost.pblk import trim
from oxhost.pblk.metadata import MetaError


def test_trim_sector_round_trips_its_records():
    rec = np.array([[0, 8], [100, 1], [2**40, 5]])
    secs = trim.pack(rec)
    assert secs.shape == (1, 4096)
    assert trim.unpack(secs[0]).tolist() == rec.tolist()


def test_trim_records_beyond_one_sector_take_more_sectors():
    per = trim.records_per_sector()
    assert per == 255
    rec = np.stack([np.arange(per + 3) * 10, np.ones(per + 3, dtype=np.int64)], axis=1)
    secs = trim.pack(rec)
    assert secs.shape[0] == 2
    assert np.concatenate([trim.unpack(s) for s in secs]).tolist() == rec.tolist()


def test_trim_sector_damage_is_detected():
    sec = trim.pack(np.array([[5, 5]]))[0]
    sec[20] ^= 1
    with pytest.raises(MetaError, match="CRC"):
        trim.unpack(sec)
    with pytest.raises(MetaError, match="magic"):
        trim.unpack(np.zeros(4096, np.uint8))


def test_trim_runs_and_coverage_are_inverse():
    mask = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    r = trim.runs(mask, base=100)
    assert r.tolist() == [[101, 2], [104, 1], [107, 3]]
    assert trim.covered(r - [100, 0], 10).tolist() == mask.tolist()
    assert trim.covered(np.array([[8, 100]]), 10).tolist() == [False] * 8 + [True] * 2


def test_pending_trims_merge_consecutive_ranges_until_a_sector_is_full():
    p = trim.PendingTrims()
    p.add(np.array([[0, 8]]))
    p.add(np.array([[8, 8], [20, 1]]))
    assert p.take().tolist() == [[0, 16], [20, 1]]
    assert not p
    for i in range(trim.records_per_sector()):
        p.add(np.array([[i * 10, 1]]))
    assert p.full
