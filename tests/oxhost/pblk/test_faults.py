"""Media faults injected through oxemu.Faults: failed programs are remapped, failed erases
turn blocks grown bad, factory bad blocks are skipped, read errors surface as EIO."""
import numpy as np
import pytest

from oxemu import Faults
from oxhost.lightnvm import Addr, dev2gen
from oxhost.pblk import PblkIOError
from oxhost.pblk.lines import LineState

from .conftest import SECTOR, stamp, unclean_stop

GROWN_BAD = 2


def _places(p, lbas):
    """(ch, lun, blk) of the media copy of each LBA."""
    ppas = p.lg.addr_ppas(p.l2p.map[lbas])
    return [(a.ch, a.lun, a.blk) for a in (dev2gen(int(x), p.dev.geo) for x in ppas)]


def test_failed_program_remaps_the_data_and_retires_the_block_when_the_line_is_freed(make_pblk):
    # line 0, LUN (ch1, lun0) = stripe index 1, page 2: its write unit is unit 9
    p = make_pblk(faults=Faults(program_fail={(1, 0, 0, 2)}))
    per_line = p.lm.reserve_secs
    p.write_sectors(0, stamp(0, per_line))
    p.flush()
    assert (p.read_sectors(0, per_line) == stamp(0, per_line)).all()
    st = p.stats()["counters"]
    assert st["write_failed"] == 8 and st["requeued"] == 8
    line0 = p.lm.lines[0]
    assert line0.werr.tolist() == [False, True, False, False]
    assert p.dev.bbt_get(Addr(1, 0)).state(0) == 0          # still in use: not retired yet
    # free line 0 by overwriting everything on it
    p.write_sectors(0, stamp(0, per_line + 8, tag=1))
    p.flush()
    assert line0.state == LineState.FREE
    bbt = p.dev.bbt_get(Addr(1, 0))
    assert [bbt.state(0, pl) for pl in range(2)] == [GROWN_BAD, GROWN_BAD]
    assert p.stats()["bad_blocks"]["grown"] == 1
    assert (p.read_sectors(0, per_line + 8) == stamp(0, per_line + 8, tag=1)).all()


def test_failed_smeta_program_moves_smeta_to_the_next_lun(disk_pblk):
    p = disk_pblk(faults=Faults(program_fail={(0, 0, 0, 0)}))
    p.write_sectors(0, stamp(0, 100))
    p.flush()
    assert p.lm.lines[0].good.tolist() == [False, True, True, True]
    assert p.dev.bbt_get(Addr(0, 0)).state(0) == GROWN_BAD
    assert (0, 0, 0) not in _places(p, np.arange(100))
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["reopened_line"] == 0
    assert (q.read_sectors(0, 100) == stamp(0, 100)).all()


def test_failed_program_data_survives_an_unclean_stop(disk_pblk):
    p = disk_pblk(faults=Faults(program_fail={(0, 1, 0, 1), (1, 1, 0, 3)}))
    p.write_sectors(0, stamp(0, 300))
    p.flush()
    assert p.stats()["counters"]["write_failed"] == 16
    unclean_stop(p)
    q = disk_pblk()
    assert (q.read_sectors(0, 300) == stamp(0, 300)).all()
    assert int(q.l2p.vsc.sum()) == 300


def test_failed_erase_marks_the_block_grown_bad_and_the_line_goes_on_without_it(make_pblk):
    p = make_pblk(faults=Faults(erase_fail={(0, 1, 1)}))       # line 1 on (ch0, lun1)
    per_line = p.lm.reserve_secs
    assert p.lm.lines[1].state == LineState.FREE
    p.write_sectors(0, stamp(0, 100))
    p.flush()                                                   # opens line 0, erases line 1 ahead
    bbt = p.dev.bbt_get(Addr(0, 1))
    assert [bbt.state(1, pl) for pl in range(2)] == [GROWN_BAD, GROWN_BAD]
    line1 = p.lm.lines[1]
    assert line1.good.tolist() == [True, True, False, True] and line1.nblocks == 3
    n = 2 * per_line
    p.write_sectors(100, stamp(100, n))
    p.flush()
    assert (p.read_sectors(0, 100 + n) == np.concatenate([stamp(0, 100), stamp(100, n)])).all()
    on_line1 = [x for x in _places(p, np.arange(100 + n)) if x[2] == 1]
    assert on_line1 and (0, 1, 1) not in on_line1
    st = p.stats()
    assert st["counters"]["erase_failed"] == 1 and st["bad_blocks"]["grown"] == 1


def test_lines_with_too_few_good_blocks_are_bad(make_pblk):
    bad = {(ch, lun, 3, 0) for ch in range(2) for lun in range(2)}
    p = make_pblk(faults=Faults(factory_bad=bad))
    assert p.lm.lines[3].state == LineState.BAD
    st = p.stats()
    assert st["bad_lines"] == 1 and st["bad_blocks"]["factory"] == 4
    p.write_sectors(0, stamp(0, 4 * p.lm.reserve_secs))
    p.flush()
    assert 3 not in {x[2] for x in _places(p, np.arange(4 * p.lm.reserve_secs))}


def test_unreadable_media_surfaces_as_an_io_error(make_pblk):
    p = make_pblk(faults=Faults(read_error_rate=1.0))
    p.write_sectors(0, stamp(0, 16))
    p.flush()
    with pytest.raises(PblkIOError):
        p.read_sectors(0, 16)
    assert p.stats()["counters"]["read_failed"] > 0


def test_recovery_ignores_stale_oob_left_by_a_failed_program(disk_pblk):
    """A failed program leaves the page holding what an earlier use of the block wrote, OOB
    included. The OOB's sequence number tells recovery it is not this line's data."""
    faults = Faults()
    p = disk_pblk(faults=faults)
    per_line = p.lm.reserve_secs
    p.write_sectors(0, stamp(0, per_line, tag=1))           # line 0, first use
    p.flush()
    p.write_sectors(0, stamp(0, per_line, tag=2))           # line 0 now holds nothing valid
    p.flush()
    assert p.lm.lines[0].state == LineState.FREE
    # unit 21 of line 0 = (ch1, lun0) page 5; its first use held LBAs 160-167
    faults.program_fail.add((1, 0, 0, 5))
    lba, tag = per_line, 3
    while not (p.lm.cur is not None and p.lm.cur.id == 0 and p.lm.cur.cur > 30):
        p.write_sectors(lba, stamp(lba, 8, tag=tag))      # a unit at a time, round the lines
        p.flush()
        lba += 8
        if lba + 8 > p.size // SECTOR:
            lba, tag = per_line, tag + 1
    assert p.stats()["counters"]["write_failed"] == 8
    expect = p.read_sectors(0, p.size // SECTOR)
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["reopened_line"] == 0
    assert (q.read_sectors(160, 8) == stamp(160, 8, tag=2)).all()
    assert (q.read_sectors(0, q.size // SECTOR) == expect).all()
