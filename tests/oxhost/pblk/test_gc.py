"""Garbage collection: victim choice, moving valid data, freeing lines, the full-volume
overwrite that cannot finish without it."""
import numpy as np

from oxhost.lightnvm import Addr, BlockState, Device
from oxhost.pblk import Pblk
from oxhost.pblk.gc import Gc
from oxhost.pblk.lines import Line, LineState

from .conftest import SECTOR, small_geometry, stamp


def _lines(specs):
    """Lines from (state, vsc, seq, werr) tuples, and their valid counts."""
    lines, vsc = [], np.zeros(len(specs), np.int64)
    for i, (state, valid, seq, werr) in enumerate(specs):
        ln = Line(i, 4)
        ln.state, ln.seq = state, seq
        ln.werr[0] = werr
        vsc[i] = valid
        lines.append(ln)
    return lines, vsc


def test_gc_picks_closed_line_with_fewest_valid_sectors():
    lines, vsc = _lines([(LineState.CLOSED, 300, 1, False), (LineState.CLOSED, 120, 2, False),
                         (LineState.OPEN, 5, 3, False), (LineState.FREE, 0, 0, False),
                         (LineState.CLOSED, 200, 4, False), (LineState.GC, 10, 5, False)])
    assert Gc.choose(lines, vsc).id == 1


def test_gc_breaks_ties_by_write_error_then_age():
    lines, vsc = _lines([(LineState.CLOSED, 100, 9, False), (LineState.CLOSED, 100, 4, False),
                         (LineState.CLOSED, 100, 7, True)])
    assert Gc.choose(lines, vsc).id == 2
    lines[2].werr[:] = False
    assert Gc.choose(lines, vsc).id == 1


def test_gc_has_no_victim_without_closed_lines():
    lines, vsc = _lines([(LineState.OPEN, 5, 1, False), (LineState.FREE, 0, 0, False)])
    assert Gc.choose(lines, vsc) is None


def test_gc_frees_a_line_left_without_valid_data_without_moving_any(pblk):
    per_line = pblk.lm.reserve_secs                 # 496 data sectors a line
    pblk.write_sectors(0, stamp(0, per_line))       # fills line 0 exactly: it closes
    pblk.flush()
    first = pblk.lm.lines[0]
    assert first.state == LineState.CLOSED and pblk.l2p.vsc[0] == per_line
    pblk.write_sectors(0, stamp(0, per_line, tag=1))
    pblk.flush()
    st = pblk.stats()
    assert first.state == LineState.FREE
    assert st["counters"]["lines_freed"] == 1 and st["gc_sectors_moved"] == 0
    assert (pblk.read_sectors(0, per_line) == stamp(0, per_line, tag=1)).all()


def test_full_volume_random_overwrite_completes_with_gc_and_loses_nothing(pblk):
    """More than twice the capacity written to a 16-line target; GC runs inline only."""
    n = pblk.size // SECTOR
    rng = np.random.default_rng(2024)
    shadow = np.zeros((n, SECTOR), np.uint8)
    for lba in range(0, n, 128):                    # fill the volume once
        k = min(128, n - lba)
        pblk.write_sectors(lba, stamp(lba, k))
        shadow[lba:lba + k] = stamp(lba, k).reshape(k, SECTOR)
    written = n
    tag = 1
    while written < 2.2 * n:                        # then random 4-32 KiB overwrites
        lba = int(rng.integers(0, n))
        k = min(int(rng.choice([1, 1, 2, 4, 8])), n - lba)
        d = stamp(lba, k, tag=tag)
        pblk.write_sectors(lba, d)
        shadow[lba:lba + k] = d.reshape(k, SECTOR)
        written += k
        tag += 1
        if tag % 2000 == 0:
            probe = int(rng.integers(0, n - 256))
            assert (pblk.read_sectors(probe, 256) == shadow[probe:probe + 256].reshape(-1)).all()
    pblk.flush()
    assert (pblk.read_sectors(0, n) == shadow.reshape(-1)).all()
    st = pblk.stats()
    print(f"\nfull-volume overwrite: {written} user sectors ({written / n:.2f}x capacity), "
          f"WA {st['write_amplification']:.2f} (media {st['media_write_amplification']:.2f}), "
          f"{st['gc_runs']} GC runs moved {st['gc_sectors_moved']} sectors, "
          f"{st['pad_sectors']} pad sectors")
    assert st["user_sectors"] == written
    assert st["gc_runs"] > 16 and st["gc_sectors_moved"] > 0
    assert st["write_amplification"] > 1.5
    assert st["bad_lines"] == 0
    assert int(pblk.l2p.vsc.sum()) == n              # every LBA valid exactly once
    counted = pblk.l2p.valid_counts()
    assert (counted == pblk.l2p.vsc).all()
    pblk.check()


def test_background_collects_when_free_lines_run_low(pblk):
    n = pblk.size // SECTOR
    rng = np.random.default_rng(5)
    for lba in range(0, n, 256):
        pblk.write_sectors(lba, stamp(lba, min(256, n - lba)))
    while not pblk.rl.gc_active:
        lba = int(rng.integers(0, n - 8))
        pblk.write_sectors(lba, stamp(lba, 8, tag=1))
    free_before = pblk.rl.free
    for _ in range(200):
        if not pblk.background():
            break
    assert pblk.rl.free > free_before
    assert pblk.stats()["gc_runs"] > 0


def test_gc_with_lines_shrunk_by_grown_bad_blocks_keeps_making_room(make_machine):
    """Lines 3, 5 and 14 lost a block each (368 data sectors instead of 496). GC chose by
    valid count alone: a small line nearly full of valid data (361 of 368) beat a full-size
    one with 117 invalid, so GC moved 361 sectors to gain 7, into the next small line, and
    round again; after full overwrites the target went read-only with 1024 spare sectors
    (`ox torture --faults program,erase,read --cuts 200`, pblk, the final overwrite)."""
    m = make_machine(geometry=small_geometry(), ram_mib=64)
    dev = Device.open(m)
    for blk, ch, lun in ((3, 0, 1), (5, 1, 1), (14, 0, 1)):
        dev.bbt_mark([Addr(ch, lun, pl=pl, blk=blk) for pl in range(2)], BlockState.GRWN_BAD)
    p = Pblk(dev)
    n = p.size // SECTOR
    rng = np.random.default_rng(7)
    for lba in range(0, n, 256):
        p.write_sectors(lba, stamp(lba, min(256, n - lba)))
    for tag in range(1, 400):                           # random overwrites, mixed sizes
        lba = int(rng.integers(0, n - 64))
        k = int(rng.choice([1, 8, 16, 64]))
        p.write_sectors(lba, stamp(lba, k, tag=tag))
    for tag in (1000, 1001, 1002):                      # whole-volume overwrites
        for lba in range(0, n, 1024):
            p.write_sectors(lba, stamp(lba, min(1024, n - lba), tag=tag))
        p.flush()
    assert not p.read_only
    assert (p.read_sectors(0, n) == np.concatenate([stamp(lba, min(1024, n - lba), tag=1002)
                                                     for lba in range(0, n, 1024)])).all()
    p.check()
