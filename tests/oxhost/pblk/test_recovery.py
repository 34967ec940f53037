"""Recovery from media at start: after a clean close, after a kill -9 at several points
(mid-line, at a line boundary, during GC, at a power cut), with damaged metadata."""
import logging

import numpy as np
import pytest

from oxemu import Faults
from oxhost.driver.errors import DriverError
from oxhost.lightnvm import Addr, PMode
from oxhost.pblk import Pblk
from oxhost.pblk.gc import Gc
from oxhost.pblk.lines import LineState
from oxhost.pblk.metadata import Kind, pack_oob
from oxhost.pblk.writer import Writer

from .conftest import SECTOR, stamp, unclean_stop


class Log:
    """What was written: the flushed tag of every LBA and the tags written since a flush."""

    def __init__(self, n):
        self.n = n
        self.flushed = np.full(n, -1, np.int64)     # -1: never written (reads zeros)
        self.pending: dict[int, set] = {}
        self.tag = 0
        self.busy = None                            # tag of the write in progress

    def write(self, p, lba, k=1):
        self.tag += 1
        for x in range(lba, lba + k):              # before the call: it may be cut short
            self.pending.setdefault(x, set()).add(self.tag)
        self.busy = self.tag
        p.write_sectors(lba, stamp(lba, k, tag=self.tag))
        self.busy = None

    def flush(self, p):
        """A flush covers every write that returned; one in progress may or may not be in."""
        p.flush()
        keep = {}
        for x, tags in self.pending.items():
            done = [t for t in tags if t != self.busy]
            if done:
                self.flushed[x] = max(done)
            if self.busy in tags:
                keep[x] = {self.busy}
        self.pending = keep

    def check(self, p, strict=False):
        """Every LBA holds its flushed data, or (unless strict) a write issued after it."""
        got = p.read_sectors(0, self.n).reshape(self.n, SECTOR // 8, 8).view("<u8")[:, :, 0]
        first = got[:, 0]
        assert (got == first[:, None]).all(), "a sector mixes data of two writes"
        tags = (first & np.uint64((1 << 20) - 1)).astype(np.int64)
        lbas = (first >> np.uint64(20)).astype(np.int64)
        blank = first == 0
        for x in range(self.n):
            want = self.flushed[x]
            if blank[x]:
                ok = want == -1
            else:
                ok = lbas[x] == x and (tags[x] == want or
                                       (not strict and tags[x] in self.pending.get(x, ())))
            assert ok, f"LBA {x}: found tag {-1 if blank[x] else tags[x]}, flushed {want}"
        # adopt what survived as the new flushed state
        self.flushed = np.where(blank, -1, tags)
        self.pending.clear()


def _random_writes(p, log, count, rng, sizes=(1, 1, 2, 8)):
    for _ in range(count):
        k = int(rng.choice(sizes))
        log.write(p, int(rng.integers(0, log.n - k)), k)


def test_recovery_of_fresh_media_is_an_empty_volume(pblk):
    assert pblk.recovery["lines_in_use"] == 0
    assert pblk.recovery["lines_free"] == 16
    assert not pblk.read_sectors(0, 256).any()


def test_recovery_after_clean_close_reopens_the_open_line(disk_pblk):
    p = disk_pblk()
    log = Log(p.size // SECTOR)
    _random_writes(p, log, 1500, np.random.default_rng(1))
    log.flush(p)
    open_line, seq = p.lm.cur.id, p.lm.cur.seq
    counters = {k: p.stats()[k] for k in ("user_sectors", "gc_sectors", "pad_sectors")}
    p.close()
    p.dev.close()
    p.machine.close()
    q = disk_pblk()
    log.check(q, strict=True)
    assert q.recovery["reopened_line"] == open_line
    assert q.lm.cur.seq == seq and q.lm.cur.state == LineState.OPEN
    assert {k: q.stats()[k] for k in counters} == counters       # WA counters survive
    _random_writes(q, log, 500, np.random.default_rng(2))          # and writing goes on
    log.flush(q)
    log.check(q, strict=True)


def test_recovery_after_unclean_stop_mid_line(disk_pblk):
    p = disk_pblk()
    log = Log(p.size // SECTOR)
    rng = np.random.default_rng(3)
    _random_writes(p, log, 700, rng)
    log.flush(p)
    _random_writes(p, log, 300, rng)                # partly drained, never flushed
    assert p.lm.cur is not None and 0 < p.lm.cur.cur < p.lm.cur.data_units.size
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["lines_scanned"] == 1 and q.recovery["reopened_line"] is not None
    log.check(q)
    _random_writes(q, log, 800, rng)
    log.flush(q)
    unclean_stop(q)
    log.check(disk_pblk(), strict=True)


def test_recovery_after_unclean_stop_exactly_at_a_line_boundary(disk_pblk):
    p = disk_pblk()
    log = Log(p.size // SECTOR)
    log.write(p, 0, p.lm.reserve_secs)              # one line's data: the line closes
    log.flush(p)
    assert p.stats()["pad_sectors"] == 0 and p.lm.cur is None
    assert p.lm.lines[0].state == LineState.CLOSED
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["lines_from_emeta"] == 1 and q.recovery["lines_scanned"] == 0
    assert q.recovery["reopened_line"] is None
    log.check(q, strict=True)
    log.write(q, 100, 50)
    log.flush(q)
    unclean_stop(q)
    log.check(disk_pblk(), strict=True)


def test_recovery_writes_the_emeta_of_a_line_found_full_without_it(disk_pblk, monkeypatch):
    p = disk_pblk()
    log = Log(p.size // SECTOR)

    def crash(self, line):
        raise RuntimeError("power lost before emeta")

    with monkeypatch.context() as mp:
        mp.setattr(Writer, "close_line", crash)
        with pytest.raises(RuntimeError):
            log.write(p, 0, p.lm.reserve_secs)
            log.flush(p)
    unclean_stop(p)
    q = disk_pblk()
    assert q.recovery["lines_scanned"] == 1 and q.recovery["reopened_line"] == 0
    assert q.lm.lines[0].state == LineState.CLOSED      # emeta written during recovery
    log.flushed[:q.lm.reserve_secs] = 1
    log.pending.clear()
    log.check(q, strict=True)
    q.close()
    q.dev.close()
    q.machine.close()
    r = disk_pblk()
    assert r.recovery["lines_from_emeta"] == 1 and r.recovery["lines_scanned"] == 0
    log.check(r, strict=True)


@pytest.mark.parametrize("crash_at", [1, 7])
def test_recovery_after_unclean_stop_during_gc(disk_pblk, monkeypatch, crash_at):
    """The stop comes right after GC put a victim's data in the write buffer, with the
    victim not yet freed and part of its data not yet on media."""
    p = disk_pblk()
    n = p.size // SECTOR
    log = Log(n)
    rng = np.random.default_rng(11 + crash_at)
    for lba in range(0, n, 128):
        log.write(p, lba, min(128, n - lba))
    log.flush(p)
    fills = []
    real_fill = Gc.fill

    def fill(self, quota):
        moved = real_fill(self, quota)
        if moved:
            fills.append(moved)
            if len(fills) == crash_at:
                raise KeyboardInterrupt("kill -9")
            if len(fills) == crash_at - 1:
                log.flush(p)                # a flush in the middle of GC work
        return moved

    monkeypatch.setattr(Gc, "fill", fill)
    with pytest.raises(KeyboardInterrupt):
        while True:
            _random_writes(p, log, 10, rng)
    monkeypatch.undo()
    assert p.rb.ngc > 0 and p.lm.count(LineState.GC) + int(p.gc.victim is not None) > 0
    unclean_stop(p)
    q = disk_pblk()
    log.check(q)
    assert int(q.l2p.vsc.sum()) == int(np.count_nonzero(q.l2p.map >= 0))
    q.check()
    _random_writes(q, log, 2000, rng)               # GC keeps working after recovery
    log.flush(q)
    log.check(q, strict=True)


@pytest.mark.parametrize("cut", [700, 4000, 9000])
def test_recovery_after_a_power_cut(disk_pblk, cut):
    p = disk_pblk(faults=Faults(power_cut_after=cut))
    log = Log(p.size // SECTOR)
    rng = np.random.default_rng(cut)
    with pytest.raises(DriverError):
        for i in range(20000):
            _random_writes(p, log, 1, rng)
            if i % 500 == 0:
                log.flush(p)
    unclean_stop(p)
    q = disk_pblk()
    q.check()
    log.check(q)
    _random_writes(q, log, 1500, rng)
    log.flush(q)
    log.check(q, strict=True)
    q.check()
    assert q.stats()["counters"]["write_failed"] == 0        # recovery wrote no programmed page


def _corrupt(p, ch, lun, blk, pg, pl=0, offset=100):
    page = p.machine.device.volt.store.data[ch, lun, blk, pg, pl]
    page[offset] ^= 0xFF


def test_recovery_skips_a_corrupt_smeta_with_a_warning(pblk, caplog):
    per_line = pblk.lm.reserve_secs
    pblk.write_sectors(0, stamp(0, 2 * per_line))   # lines 0 and 1, both closed
    pblk.write_sectors(2 * per_line, stamp(2 * per_line, 40))
    pblk.close()
    ch, lun = pblk.lg.luns[0]
    _corrupt(pblk, ch, lun, blk=1, pg=0, offset=40)  # smeta of line 1
    with caplog.at_level(logging.WARNING, logger="oxhost.pblk"):
        q = Pblk(pblk.dev)
    assert "line 1" in caplog.text and "CRC" in caplog.text
    assert q.recovery["corrupt_smeta"] == 1 and q.lm.lines[1].state == LineState.FREE
    assert (q.read_sectors(0, per_line) == stamp(0, per_line)).all()
    assert not q.read_sectors(per_line, per_line).any()        # line 1's data is gone
    assert (q.read_sectors(2 * per_line, 40) == stamp(2 * per_line, 40)).all()


def test_recovery_of_a_corrupt_emeta_falls_back_to_the_oob(pblk, caplog):
    per_line = pblk.lm.reserve_secs
    pblk.write_sectors(0, stamp(0, per_line + 16))
    pblk.close()
    lg = pblk.lg
    unit = int(pblk.lm.lines[0].emeta_units[0])
    ch, lun = lg.luns[unit % lg.nluns]
    _corrupt(pblk, ch, lun, blk=0, pg=unit // lg.nluns, offset=500)
    with caplog.at_level(logging.WARNING, logger="oxhost.pblk"):
        q = Pblk(pblk.dev)
    assert "emeta" in caplog.text and "CRC" in caplog.text
    assert q.recovery["corrupt_emeta"] == 1 and q.recovery["lines_scanned"] == 2
    assert (q.read_sectors(0, per_line + 16) == stamp(0, per_line + 16)).all()


def test_recovery_pads_a_unit_a_power_cut_left_half_written(disk_pblk):
    """A cut between the two plane pages of a unit: recovery programs the missing plane page
    with padding so the planes line up, keeps what the written half holds, and writing goes on."""
    p = disk_pblk()
    log = Log(p.size // SECTOR)
    log.write(p, 0, 40)
    log.flush(p)
    line = p.lm.cur
    seq, unit = line.seq, int(line.data_units[line.cur])
    lg = p.lg
    ch, lun = lg.luns[unit % lg.nluns]
    pg = unit // lg.nluns
    unclean_stop(p)
    # what the cut left: plane 0 of the next unit programmed with LBAs 1000-1003, plane 1 not
    dev = disk_pblk.device()
    dev.addr_write([Addr(ch, lun, 0, line.id, pg, s) for s in range(4)], stamp(1000, 4, tag=99),
                   meta=pack_oob(seq, Kind.USER, np.arange(1000, 1004)), pmode=PMode.SNGL)
    q = Pblk(dev)
    assert q.recovery["reopened_line"] == line.id
    assert q.lm.cur.cur == line.cur + 1                 # went past the padded unit
    assert (q.read_sectors(1000, 4) == stamp(1000, 4, tag=99)).all()
    log.flushed[1000:1004] = 99
    log.check(q, strict=True)
    log.write(q, 2000, 100)
    log.flush(q)
    log.check(q, strict=True)


def test_counters_all_persist_across_a_remount(disk_pblk):
    """Not only pblk's WA counters: GC runs, metadata sectors, discards... all come back, so
    the media WA after a remount is the volume's whole history."""
    p = disk_pblk()
    n = p.size // 4096
    rng = np.random.default_rng(3)
    p.write_sectors(0, np.ones(n * 4096, np.uint8))
    p.discard_sectors(0, 64)
    for lba in rng.integers(64, n - 8, 600):                # overwrites: GC runs, lines close
        p.write_sectors(int(lba), np.full(8 * 4096, 7, np.uint8))
    p.flush()
    before = dict(p.c)
    assert before["gc_runs"] > 0 and before["lines_closed"] > 0 and before["meta"] > 0
    p.close()
    p.machine.close()
    q = disk_pblk()
    after = q.c
    for k in ("user", "gc", "pad", "meta", "trim_sectors"):            # sector counts: exact
        assert after[k] == before[k], k
    for k in ("gc_runs", "gc_moved", "lines_closed", "erases", "discarded_sectors"):
        assert 0 < after[k] <= before[k], k                           # as of the last line close
    st = q.stats()
    assert st["media_write_amplification"] > st["write_amplification"] >= 1.0
    assert "counters_persist" in st
