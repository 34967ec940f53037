"""Durable discard (SPEC 9): a discard's TRIM records enter the log where it was issued,
so after a clean or an unclean stop a flushed discard reads zeros (or newer data), never
the data it removed nor an older version; GC keeps the records only while needed."""
import numpy as np

from oxhost.pblk.lines import LineState
from oxhost.pblk.metadata import ADDR_TRIM

from .conftest import SECTOR, stamp, unclean_stop


def _reopen_clean(p, disk_pblk):
    p.close()
    p.dev.close()
    p.machine.close()
    return disk_pblk()


def test_discard_survives_a_clean_remount_and_never_uncovers_an_older_version(disk_pblk):
    """The report: discard, flush, clean remount, and the old data was back -- even the
    version before the one discarded."""
    p = disk_pblk()
    p.write_sectors(0, stamp(0, 64, tag=1))
    p.flush()
    p.write_sectors(0, stamp(0, 64, tag=2))        # version 2 over version 1, both on media
    p.flush()
    p.discard_sectors(8, 32)
    p.flush()
    p.check()
    q = _reopen_clean(p, disk_pblk)
    assert not q.read_sectors(8, 32).any()
    assert (q.read_sectors(0, 8) == stamp(0, 8, tag=2)).all()
    assert (q.read_sectors(40, 24) == stamp(40, 24, tag=2)).all()
    assert q.recovery["trim_sectors"] == 1
    q.check()


def test_discard_survives_an_unclean_stop_once_flushed(disk_pblk):
    p = disk_pblk()
    p.write_sectors(0, stamp(0, 100))
    p.flush()
    p.discard_sectors(10, 50)
    p.flush()
    unclean_stop(p)
    q = disk_pblk()
    assert not q.read_sectors(10, 50).any()
    assert (q.read_sectors(60, 40) == stamp(60, 40)).all()


def test_data_written_after_a_discard_wins_over_its_trim_record(disk_pblk):
    """Log order is issue order: the TRIM sector goes into the buffer before the next write,
    so replay unmaps the old data and then maps the new."""
    p = disk_pblk()
    p.write_sectors(0, stamp(0, 16, tag=1))
    p.flush()
    p.discard_sectors(0, 16)
    p.write_sectors(4, stamp(4, 4, tag=2))
    p.flush()
    unclean_stop(p)
    q = disk_pblk()
    assert not q.read_sectors(0, 4).any() and not q.read_sectors(8, 8).any()
    assert (q.read_sectors(4, 4) == stamp(4, 4, tag=2)).all()


def test_consecutive_discards_share_one_trim_sector(pblk):
    pblk.write_sectors(0, stamp(0, 300))
    pblk.flush()
    for lba in range(0, 300, 10):
        pblk.discard_sectors(lba, 5)
    pblk.flush()
    st = pblk.stats()
    assert st["trim_sectors"] == 1 and st["counters"]["trim_records"] == 30
    line = pblk.lm.cur.id
    assert int(np.count_nonzero(pblk.l2p.lba[line] == ADDR_TRIM)) == 1


def test_discard_of_unmapped_sectors_logs_nothing(pblk):
    """An unmapped LBA has no copy to hide, or an earlier record hides it already."""
    pblk.discard_sectors(0, pblk.size // SECTOR)
    pblk.flush()
    assert pblk.stats()["trim_sectors"] == 0 and pblk.stats()["pad_sectors"] == 0


def test_discard_of_buffered_sectors_is_durable_too(disk_pblk):
    """Buffered data of a discarded LBA still reaches the media (its slot is in the ring);
    the TRIM record comes after it."""
    p = disk_pblk()
    p.write_sectors(0, stamp(0, 5))
    p.discard_sectors(0, 5)
    p.flush()
    unclean_stop(p)
    q = disk_pblk()
    assert not q.read_sectors(0, 5).any()


def _collect_line_of(p, lba, n_other):
    """Overwrite LBAs other than the test's until the line holding `lba`'s TRIM record has
    been collected by GC."""
    line = p.lm.cur.id
    seq = p.lm.lines[line].seq
    rng = np.random.default_rng(3)
    for i in range(20000):
        if p.lm.lines[line].seq != seq or p.lm.lines[line].state == LineState.FREE:
            return line
        x = int(rng.integers(n_other[0], n_other[1] - 8))
        p.write_sectors(x, stamp(x, 8, tag=100 + i))
    raise AssertionError(f"GC never collected line {line}")


def test_gc_moves_trim_records_still_needed_and_drops_those_of_rewritten_lbas(disk_pblk):
    """A TRIM record whose older copies still exist elsewhere is rewritten when its line is
    collected; one whose LBA was written again since is dropped (placed later in the log it
    would unmap the newer data)."""
    p = disk_pblk()
    n = p.size // SECTOR
    p.write_sectors(0, stamp(0, n, tag=1))          # the whole volume: every line has old copies
    p.flush()
    p.discard_sectors(0, 32)
    p.write_sectors(16, stamp(16, 16, tag=2))       # half of it written again
    p.flush()
    _collect_line_of(p, 0, (p.lm.reserve_secs, n))   # line 0 (old copies) stays
    assert p.stats()["counters"]["gc_trim_sectors"] >= 1
    p.flush()
    p.check()
    unclean_stop(p)
    q = disk_pblk()
    assert not q.read_sectors(0, 16).any()
    assert (q.read_sectors(16, 16) == stamp(16, 16, tag=2)).all()


def test_volatile_discard_is_available_as_pblk_4_12_had_it(disk_pblk):
    """durable_discard=False logs nothing: the mapping goes, and a restart brings the old
    data back (what Linux 4.12 does)."""
    p = disk_pblk(durable_discard=False)
    p.write_sectors(0, stamp(0, 16))
    p.flush()
    p.discard_sectors(0, 16)
    assert not p.read_sectors(0, 16).any()
    p.flush()
    assert p.stats()["trim_sectors"] == 0
    q = _reopen_clean(p, disk_pblk)
    assert (q.read_sectors(0, 16) == stamp(0, 16)).all()


def test_trim_sector_in_a_closed_line_is_found_through_its_emeta(disk_pblk):
    """emeta's LBA list marks TRIM sectors (ADDR_TRIM), so a line recovered from its emeta
    replays its discards in place as a scanned one does."""
    p = disk_pblk()
    per_line = p.lm.reserve_secs
    p.write_sectors(0, stamp(0, 64, tag=1))
    p.discard_sectors(0, 32)
    p.write_sectors(64, stamp(64, per_line, tag=1))    # the line with the TRIM sector closes
    p.flush()
    line = p.lm.lines[0]
    assert line.state == LineState.CLOSED
    assert int(np.count_nonzero(p.l2p.lba[0] == ADDR_TRIM)) == 1
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["lines_from_emeta"] == 1 and q.recovery["trim_sectors"] == 1
    assert not q.read_sectors(0, 32).any()
    assert (q.read_sectors(32, 32) == stamp(32, 32, tag=1)).all()
    q.check()
