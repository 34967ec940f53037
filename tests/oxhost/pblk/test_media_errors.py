"""One media-error policy (SPEC 9): a user read of sectors the media cannot read (after
retries) raises PblkIOError (EIO) naming them and carrying the rest of the request; a
mapped sector that reads as never written is an error too, never zeros; GC leaves an
unreadable sector mapped where it is and does not spin on its line."""
import errno

import numpy as np
import pytest

from oxemu import Faults
from oxhost.blockdev import MediaError
from oxhost.lightnvm import Addr, dev2gen
from oxhost.pblk import PblkIOError
from oxhost.pblk.gc import Gc
from oxhost.pblk.lines import Line, LineState

from .conftest import SECTOR, stamp


def test_read_error_fails_only_the_unreadable_sectors_and_serves_the_rest(make_pblk):
    faults = Faults()
    p = make_pblk(faults=faults)
    p.write_sectors(0, stamp(0, 16))
    p.flush()
    p.write_sectors(16, stamp(16, 4))                     # still in the write buffer
    faults.read_error_rate = 1.0
    with pytest.raises(PblkIOError) as e:
        p.read_sectors(0, 24)
    err = e.value
    assert isinstance(err, MediaError) and err.errno == errno.EIO
    assert err.failed.tolist() == [True] * 16 + [False] * 8
    data = err.data.reshape(24, SECTOR)
    assert (data[16:20].reshape(-1) == stamp(16, 4)).all()
    assert not data[20:].any()
    c = p.stats()["counters"]
    assert c["read_failed"] == 16 and c["read_retries"] >= 16 * 4
    with pytest.raises(PblkIOError) as e:                 # the 4 KiB path has the same policy
        p.read_sectors(3, 1)
    assert e.value.failed.tolist() == [True]
    faults.read_error_rate = 0.0
    assert (p.read_sectors(0, 20) == stamp(0, 20)).all()  # nothing was remapped or zeroed


def test_transient_read_errors_are_retried_and_the_read_succeeds(make_pblk):
    faults = Faults(seed=5)
    p = make_pblk(faults=faults)
    p.write_sectors(0, stamp(0, 256))
    p.flush()
    faults.read_error_rate = 0.1
    assert (p.read_sectors(0, 256) == stamp(0, 256)).all()
    for lba in range(0, 256, 17):
        assert (p.read_sectors(lba, 1) == stamp(lba)).all()
    c = p.stats()["counters"]
    assert c["read_retries"] > 0 and c["read_failed"] == 0


def test_mapped_sector_that_reads_as_never_written_is_an_error_not_zeros(make_pblk):
    """A lost write (the media forgot a page the L2P maps) must surface, not read as zeros."""
    p = make_pblk()
    p.write_sectors(0, stamp(0, 64))
    p.flush()
    where = [dev2gen(int(x), p.dev.geo) for x in p.lg.addr_ppas(p.l2p.map[:64])]
    lost = np.array([(a.ch, a.lun) == (0, 1) for a in where])
    assert 0 < lost.sum() < 64
    p.dev.addr_erase([Addr(0, 1, pl, 0) for pl in range(2)])      # behind pblk's back
    with pytest.raises(PblkIOError) as e:
        p.read_sectors(0, 64)
    assert e.value.failed.tolist() == lost.tolist()
    good = e.value.data.reshape(64, SECTOR)[~lost]
    assert (good == stamp(0, 64).reshape(64, SECTOR)[~lost]).all()
    assert p.stats()["counters"]["read_empty"] == int(lost.sum())


def _fill_and_churn_until_gc(p, shadow, rng):
    n = p.size // SECTOR
    for lba in range(0, n, 256):
        k = min(256, n - lba)
        p.write_sectors(lba, stamp(lba, k, tag=1))
        shadow[lba:lba + k] = 1
    tag = 2
    while p.stats()["gc_runs"] == 0:
        lba = int(rng.integers(0, n - 8))
        p.write_sectors(lba, stamp(lba, 8, tag=tag))
        shadow[lba:lba + 8] = tag
        tag += 1
    return tag


def _check_shadow(p, shadow):
    n = shadow.size
    raw = p.read_sectors(0, n).reshape(n, SECTOR)
    zeros = ~raw.any(axis=1)
    assert not zeros.any(), f"{int(zeros.sum())} LBAs read back as zeros"
    first = raw.view("<u8")[:, 0]
    tags = (first & np.uint64((1 << 20) - 1)).astype(np.int64)
    assert (tags == shadow).all()


@pytest.mark.device_errors_expected    # GC logs the sector it cannot read
def test_gc_leaves_an_unreadable_sector_mapped_and_failing_and_never_writes_zeros(make_pblk):
    """The report: with read errors during GC, LBAs later read back as zeros and no EIO was
    raised. Sectors GC cannot read stay mapped on the victim (a reader gets EIO while the
    media fails, the data once it reads again), the victim is kept, and GC moves on."""
    faults = Faults(seed=9)
    p = make_pblk(faults=faults)
    n = p.size // SECTOR
    shadow = np.zeros(n, np.int64)
    rng = np.random.default_rng(4)
    tag = _fill_and_churn_until_gc(p, shadow, rng)
    while p.gc.victim is not None:                        # start clean on the next victim
        p.background()
    faults.read_error_rate = 1.0                          # every read fails while GC moves it
    for _ in range(100):                                  # one victim's worth of GC cycles
        p.background()
        if p.stats()["counters"]["read_failed_gc"] and p.gc.victim is None:
            break
    stuck_line = next(ln for ln in p.lm.lines if ln.collected)
    assert stuck_line.state == LineState.CLOSED and p.l2p.vsc[stuck_line.id] > 0
    spl = p.lg.sec_per_line
    stuck = np.array(sorted(int(p.l2p.lba[a // spl, a % spl]) for a in p.l2p.unreadable))
    stuck = stuck[p.l2p.map[stuck] // spl == stuck_line.id]
    assert stuck.size == p.l2p.vsc[stuck_line.id] == p.stats()["unreadable_sectors"]
    p.check()
    x = int(stuck[0])
    with pytest.raises(PblkIOError) as e:                 # still mapped, still failing
        p.read_sectors(x - 1, 3)
    assert e.value.failed[1]
    faults.read_error_rate = 0.0
    _check_shadow(p, shadow)                              # never zeros: the data is still there
    assert p.stats()["counters"]["read_failed_gc"] >= stuck.size
    runs = p.stats()["gc_runs"]
    for _ in range(3000):                                 # GC goes on (and may try the line again)
        lba = int(rng.integers(0, n - 8))
        p.write_sectors(lba, stamp(lba, 8, tag=tag))
        shadow[lba:lba + 8] = tag
        tag += 1
        if not stuck_line.collected:                      # tried again, read fine, freed
            break
    p.flush()
    assert p.stats()["gc_runs"] > runs
    _check_shadow(p, shadow)
    p.check()
    if stuck_line.collected:
        for y in stuck.tolist():                          # rewriting them frees the line
            p.write_sectors(y, stamp(y, 1, tag=tag))
            shadow[y] = tag
        p.flush()
        assert stuck_line.state == LineState.FREE and not stuck_line.collected
    _check_shadow(p, shadow)
    p.check()


def test_gc_does_not_pick_a_line_it_could_not_empty_again():
    lines = [Line(i, 4) for i in range(3)]
    for ln, seq in zip(lines, (1, 2, 3)):
        ln.state, ln.seq = LineState.CLOSED, seq
    lines[0].collected = True                              # only unreadable sectors left
    assert Gc.choose(lines, np.array([1, 50, 60])).id == 1


def test_a_steady_read_error_rate_never_turns_data_into_zeros(make_pblk):
    """2 % of reads fail (ECC can be transient): retries absorb them, in user reads and GC."""
    faults = Faults(seed=21)
    p = make_pblk(faults=faults)
    n = p.size // SECTOR
    shadow = np.zeros(n, np.int64)
    rng = np.random.default_rng(8)
    faults.read_error_rate = 0.02
    tag = _fill_and_churn_until_gc(p, shadow, rng)
    for _ in range(1500):
        lba = int(rng.integers(0, n - 8))
        p.write_sectors(lba, stamp(lba, 8, tag=tag))
        shadow[lba:lba + 8] = tag
        tag += 1
    p.flush()
    _check_shadow(p, shadow)
    c = p.stats()["counters"]
    assert c["read_retries"] > 0 and c["read_failed_gc"] == 0 and c["read_failed"] == 0
    p.check()
