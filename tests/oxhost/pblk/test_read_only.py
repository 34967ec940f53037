"""Read-only mode: when grown bad blocks eat the spare space GC needs, writes and discards
are refused with EROFS, reads keep working, stats say why, one warning is logged, and the
media still opens (read-only). Never wedged, never refused to open."""
import errno
import logging

import pytest

from oxemu import Faults
from oxhost.blockdev import ReadOnly
from oxhost.pblk import Pblk, PblkReadOnly
from oxhost.pblk.lines import LineState

from .conftest import SECTOR, small_geometry, stamp

# erases of lines 1-7 fail on the first LUN: each line loses that block when first used
ERASE_FAILS = {(0, 0, blk) for blk in range(1, 8)}


def _write_until_read_only(p):
    """Sequential writes until the target refuses one; returns (error, sectors written)."""
    n = p.size // SECTOR
    written = 0
    with pytest.raises(PblkReadOnly) as e:
        for lba in range(0, n, 64):
            k = min(64, n - lba)
            p.write_sectors(lba, stamp(lba, k, tag=1))
            written += k
    return e.value, written


def test_grown_bad_blocks_eating_the_spare_turn_the_target_read_only(make_pblk, caplog):
    p = make_pblk(faults=Faults(erase_fail=ERASE_FAILS))
    with caplog.at_level(logging.WARNING, logger="oxhost.pblk"):
        err, written = _write_until_read_only(p)
    assert written > 0
    assert isinstance(err, ReadOnly) and err.errno == errno.EROFS
    warnings = [r for r in caplog.records if "read-only" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    st = p.stats()
    assert st["read_only"] is True and "spare" in st["read_only_reason"]
    assert st["bad_blocks"]["grown"] >= 5
    with pytest.raises(PblkReadOnly):
        p.discard_sectors(0, 8)
    with pytest.raises(PblkReadOnly):
        p.write_sectors(0, stamp(0, 1))
    p.flush()                                             # what was acknowledged gets written
    assert (p.read_sectors(0, written) == stamp(0, written, tag=1)).all()
    assert p.stats()["write_buffer"]["buffered"] == 0
    p.check()


def test_media_whose_spare_is_gone_opens_read_only(make_pblk):
    p = make_pblk(faults=Faults(erase_fail=ERASE_FAILS))
    _write_until_read_only(p)
    n = p.size // SECTOR
    p.flush()
    expect = p.read_sectors(0, n)
    p.close()
    q = Pblk(p.dev)                                        # recovery works, writes nothing
    assert q.read_only and q.stats()["read_only"]
    assert (q.read_sectors(0, n) == expect).all()
    with pytest.raises(PblkReadOnly):
        q.write_sectors(0, stamp(0, 1))
    q.flush()
    q.check()


def test_a_device_that_refuses_writes_makes_the_target_read_only(make_pblk):
    """The device answers NS_WRITE_PROTECTED (its own media went read-only): the target
    keeps serving reads and refuses writes instead of failing blocks."""
    p = make_pblk()
    p.write_sectors(0, stamp(0, 64))
    p.flush()
    p.write_sectors(64, stamp(64, 20))                    # still in the write buffer
    p.machine.device.volt.read_only = True
    with pytest.raises(PblkReadOnly):
        p.flush()
    assert p.read_only and p.stats()["bad_blocks"]["grown"] == 0
    assert (p.read_sectors(0, 84) == stamp(0, 84)).all()     # buffered data is still served
    with pytest.raises(PblkReadOnly):
        p.write_sectors(0, stamp(0, 1))


def test_smeta_failures_that_retire_a_line_turn_the_target_read_only_at_once(make_pblk):
    """Every smeta program of line 1 fails (page 0 on all four LUNs), so the line loses
    its blocks one by one while it is being opened and is retired; two lines already short
    of a block leave too little spare after that. The writer's retire path re-checks the
    spare as the erase path does: the target is read-only as soon as the line is gone,
    for the spare's reason, not only once GC runs out of room later."""
    geo = small_geometry()
    factory = {(1, 1, 14, 0), (1, 1, 15, 0)}                  # lines 14 and 15: one block short
    fails = {(ch, lun, 1, 0) for ch in range(geo.nchannels) for lun in range(geo.nluns)}
    p = make_pblk(faults=Faults(factory_bad=factory, program_fail=fails))
    assert not p.read_only
    per_line = p.lm.reserve_secs
    p.write_sectors(0, stamp(0, per_line + 8, tag=1))
    p.flush()                                                 # fills line 0, opens the next
    line1 = p.lm.lines[1]
    assert line1.state == LineState.BAD and p.stats()["counters"]["write_failed"] == 4 * 8
    assert p.read_only and "spare" in p.stats()["read_only_reason"]
    with pytest.raises(PblkReadOnly):
        p.write_sectors(0, stamp(0, 1))
    assert (p.read_sectors(0, per_line + 8) == stamp(0, per_line + 8, tag=1)).all()
    p.check()
