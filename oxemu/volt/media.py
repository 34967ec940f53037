"""VOLT: the NAND media manager. Knows pages, planes and blocks; nothing of NVMe.

Media commands (MMGR) act on one plane's page or block each; the vector calls take many
at once and behave exactly as issuing them one by one in order. NAND rules: a block is
erased before it is programmed, its pages are programmed in order and once, reads of a
never-programmed page report EMPTY and return zeros, bad blocks fail.

A page whose program failed is consumed all the same and reads back as ECC (zeros)
until its block is erased; its state is kept per plane page in the store, so it
survives a restart.

Power cut (Faults.power_cut_after = N): the first N media operations run; the MMGR
command the cut interrupts is torn -- a program consumes its page (the block's next page
advances) and leaves it unreadable (ECC until erased); an erase does not happen, while
the per-plane erases of the same NVMe command before it did; a read returns nothing.
Nothing after it happens: every later command reports POWER_LOSS.
"""
import enum
import logging

import numpy as np

from ..wire.ox import MediaLabel
from .faults import Faults
from .geometry import Geometry
from .store import PageState, Store
from .timing import MediaOp, TimingModel

log = logging.getLogger(__name__)


class MediaStatus(enum.IntEnum):
    OK = 0
    EMPTY = 1          # page never programmed since the last erase
    PROGRAM_FAIL = 2   # out of order, not erased, bad block or injected failure
    ERASE_FAIL = 3     # bad block or injected failure (the block turns grown-bad)
    ECC = 4            # uncorrectable read error (injected)
    POWER_LOSS = 5     # the plug was pulled: nothing happens any more


BAD_STATES = (1, 2)    # BlockState.BAD, BlockState.GRWN_BAD
_FEW = 4               # program_pages of at most this many pages runs in plain integers
_OK, _EMPTY, _PFAIL, _EFAIL, _ECC, _PLOSS = (int(s) for s in MediaStatus)
assert (_OK, _EMPTY) == (0, 1)


def _arr(*xs):
    return tuple(np.asarray(x, dtype=np.int64).reshape(-1) for x in xs)


class Volt:
    """The media: store + rules + timing + faults; counts every operation."""

    def __init__(self, geo: Geometry, store: Store, timing: TimingModel, faults: Faults | None = None):
        self.geo = geo
        self.store = store
        self.timing = timing
        self.faults = faults or Faults()
        self.counters = dict(reads=0, programs=0, erases=0, empty_reads=0,
                             program_fails=0, erase_fails=0, read_errors=0, torn_pages=0)
        self._ops = 0
        self.powered = True
        self.read_only = bool(store.label.read_only) or store.readonly   # no writes accepted
        self._bp_shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        self._pg_shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes)
        self._data = store.data.reshape(-1, geo.page_nbytes)               # one row per page
        self._oob = store.oob.reshape(-1, geo.oob_nbytes)
        self._next = store.next_page.reshape(-1)
        self._bbt = store.bbt.reshape(-1)
        self._erases = store.erase_count.reshape(-1)
        self._pstate = store.page_state.reshape(-1)        # PageState per plane page (row)
        self._unreadable = int(np.count_nonzero(self._pstate))
        self._zero_page = np.zeros(geo.page_nbytes, dtype=np.uint8)
        self._zero_oob = np.zeros(geo.oob_nbytes, dtype=np.uint8)
        self._zero_page.flags.writeable = False
        self._zero_oob.flags.writeable = False

    # ---------------------------------------------------------------- bookkeeping
    @property
    def ops(self) -> int:
        """Media operations performed since power-on: what Faults.power_cut_after counts."""
        return self._ops

    def _admit(self, n: int, op: str) -> int:
        """How many of n operations of kind op run before the power cut (all, when none
        is set)."""
        if not self.powered:
            return 0
        if self.faults.observer is not None:
            self.faults.observer(op, self._ops, n)
        cut = self.faults.power_cut_after
        k = n if cut is None else max(0, min(n, cut - self._ops))
        self._ops += k
        if k < n:
            self.powered = False
            log.warning("VOLT: power cut after %d media operations", cut)
        return k

    def mutating(self) -> None:
        """The media is about to change: the store marks its header (once per stop). A
        device mode that writes the NVRAM region calls it first."""
        if not self.store.writing:
            self.store.begin_write()

    def _spoil(self, row: int, state: PageState) -> None:
        """A consumed page that cannot be read back: zeros, and ECC until erased."""
        self._data[row] = 0               # no stale bytes from the last cycle
        self._oob[row] = 0
        if not self._pstate[row]:
            self._unreadable += 1
        self._pstate[row] = state

    def _faulty(self) -> bool:
        f = self.faults
        return bool(f.program_fail or f.program_fail_rate or f.erase_fail or f.erase_fail_rate
                    or f.read_error_rate)

    @property
    def faultless(self) -> bool:
        """Powered, with no fault and no power cut to inject: a batch of MMGR commands
        then has only the NAND rules to tell it apart from the same commands one by one."""
        return self.powered and self.faults.power_cut_after is None and not self._faulty()

    def _is_bad(self, bp: np.ndarray) -> np.ndarray:
        s = self._bbt[bp]
        return (s == BAD_STATES[0]) | (s == BAD_STATES[1])

    # ---------------------------------------------------------------- vector MMGR
    def erase_blocks(self, ch, lun, blk, pl) -> np.ndarray:
        ch, lun, blk, pl = _arr(ch, lun, blk, pl)
        n = ch.size
        status = np.full(n, _PLOSS, dtype=np.uint8)
        k = self._admit(n, "erase")     # an erase the cut interrupts does not happen
        if k == 0:
            return status
        self.mutating()
        bp = np.ravel_multi_index((ch[:k], lun[:k], blk[:k], pl[:k]), self._bp_shape)
        bad = self._is_bad(bp)
        if self._faulty():
            f = self.faults
            for i in np.flatnonzero(~bad):
                if f.erase_fails(int(ch[i]), int(lun[i]), int(blk[i])):
                    self._bbt[bp[i]] = 2                         # grown bad
                    bad[i] = True
        good = bp[~bad]
        self._next[good] = 0
        if good.size:                                 # about to be written: fault it in ahead
            self.store.prepare_erased(np.unique(good // self.geo.nplanes))
        if self._unreadable and good.size:            # erased pages are readable (empty) again
            g = self.geo
            cl, pl_ = np.divmod(good, g.nplanes)
            rows = ((cl[:, None] * g.npages + np.arange(g.npages)) * g.nplanes + pl_[:, None]).reshape(-1)
            spoiled = np.unique(rows[self._pstate[rows] != 0])
            if spoiled.size:
                self._pstate[spoiled] = PageState.OK
                self._unreadable -= int(spoiled.size)
        np.add.at(self._erases, good, 1)
        status[:k] = np.where(bad, _EFAIL, _OK)
        self.counters["erases"] += good.size
        self.counters["erase_fails"] += int(bad.sum())
        return status

    def program_pages(self, ch, lun, blk, pl, pg, data: np.ndarray, oob: np.ndarray | None) -> np.ndarray:
        """Program pages in list order: data is (n, page_nbytes), oob (n, <= oob_nbytes) or None.
        Coordinates come as arrays, or as lists of ints for a few pages (a unit's)."""
        few = type(pg) is list and len(pg) <= _FEW
        if not few:
            ch, lun, blk, pl, pg = _arr(ch, lun, blk, pl, pg)
        n = len(pg)
        status = np.full(n, _PLOSS, dtype=np.uint8)
        was_powered = self.powered
        k = self._admit(n, "program")
        torn = was_powered and k < n                  # the cut interrupts command k
        if k == 0 and not torn:
            return status
        self.mutating()
        tear = (int(ch[k]), int(lun[k]), int(blk[k]), int(pl[k]), int(pg[k])) if torn else None
        if k <= _FEW:
            if not few:
                ch, lun, blk, pl, pg = ch.tolist(), lun.tolist(), blk.tolist(), pl.tolist(), pg.tolist()
            self._program_few(ch[:k], lun[:k], blk[:k], pl[:k], pg[:k], data, oob, status)
            if tear is not None:
                self._tear(*tear)
            return status
        ch, lun, blk, pl, pg = ch[:k], lun[:k], blk[:k], pl[:k], pg[:k]
        bp = np.ravel_multi_index((ch, lun, blk, pl), self._bp_shape)
        nxt = self._next[bp].astype(np.int64)
        bad = self._is_bad(bp)
        if np.unique(bp).size == k:                   # one page per block-plane: no ordering
            ok = (pg == nxt) & ~bad
        else:                                         # k-th page of a block-plane expects nxt + k
            order = np.argsort(bp, kind="stable")
            sb = bp[order]
            start = np.r_[True, sb[1:] != sb[:-1]]
            first = np.maximum.accumulate(np.where(start, np.arange(k), 0))
            rank = np.arange(k) - first
            ok = np.empty(k, dtype=bool)
            ok[order] = (pg[order] == nxt[order] + rank) & ~bad[order]
            if not ok.all():                          # a refused page does not move its block's
                expect = {}                           # write pointer: replay one page at a time
                for i in range(k):
                    b = int(bp[i])
                    e = expect.get(b, int(nxt[i]))
                    ok[i] = int(pg[i]) == e and not bad[i]
                    expect[b] = e + 1 if ok[i] else e
        consumed = bp[ok]
        np.maximum.at(self._next, consumed, (pg[ok] + 1).astype(self._next.dtype))
        if self._faulty():
            f = self.faults
            for i in np.flatnonzero(ok):
                if f.program_fails(int(ch[i]), int(lun[i]), int(blk[i]), int(pg[i])):
                    ok[i] = False                     # the page is consumed all the same
                    row = int(np.ravel_multi_index((ch[i], lun[i], blk[i], pg[i], pl[i]), self._pg_shape))
                    self._spoil(row, PageState.PROGRAM_FAILED)
        first = ok & (pg == 0)
        if first.any():                               # a block starts filling: fault it in at once
            self.store.prepare_block((ch[first] * self.geo.nluns + lun[first]) * self.geo.nblocks + blk[first])
        if ok.all():                                  # the usual case: no masking copies
            rows = np.ravel_multi_index((ch, lun, blk, pg, pl), self._pg_shape)
            data, oob = data[:k], None if oob is None else oob[:k]
        else:
            rows = np.ravel_multi_index((ch[ok], lun[ok], blk[ok], pg[ok], pl[ok]), self._pg_shape)
            data, oob = data[:k][ok], None if oob is None else oob[:k][ok]
        self._data[rows] = data
        if oob is None:
            self._oob[rows] = 0
        else:
            w = oob.shape[1]
            self._oob[rows, :w] = oob
            self._oob[rows, w:] = 0
        status[:k] = np.where(ok, _OK, _PFAIL)
        self.counters["programs"] += rows.size
        self.counters["program_fails"] += k - rows.size
        if tear is not None:
            self._tear(*tear)
        return status

    def _program_few(self, ch, lun, blk, pl, pg, data, oob, status) -> None:
        """program_pages for a few pages (a unit of AppNVM, one page pair), in plain integers:
        the page-at-a-time rule the vector path replays when it must -- a page is taken
        when it is its block-plane's next and the block is not bad, and only a taken page
        moves the write pointer -- then faults, first-page population and the copies."""
        g = self.geo
        nch, nl, nb, npg, npl = g.nchannels, g.nluns, g.nblocks, g.npages, g.nplanes
        k = len(pg)
        bps, oks, expect = [], [], {}
        for i in range(k):
            c, lu, b, p, q = ch[i], lun[i], blk[i], pl[i], pg[i]
            if not (0 <= c < nch and 0 <= lu < nl and 0 <= b < nb and 0 <= p < npl and 0 <= q < npg):
                raise ValueError("invalid entry in coordinates array")
            bp = ((c * nl + lu) * nb + b) * npl + p
            e = expect.get(bp)
            if e is None:
                e = int(self._next[bp])
            s = int(self._bbt[bp])
            ok = q == e and s != BAD_STATES[0] and s != BAD_STATES[1]
            expect[bp] = e + 1 if ok else e
            bps.append(bp)
            oks.append(ok)
        for i in range(k):                            # the pages taken move the write pointers
            if oks[i]:
                self._next[bps[i]] = expect[bps[i]]
        rows = [((((ch[i] * nl + lun[i]) * nb + blk[i]) * npg + pg[i]) * npl + pl[i]) for i in range(k)]
        if self._faulty():
            f = self.faults
            for i in range(k):
                if oks[i] and f.program_fails(ch[i], lun[i], blk[i], pg[i]):
                    oks[i] = False                    # the page is consumed all the same
                    self._spoil(rows[i], PageState.PROGRAM_FAILED)
        first = [(ch[i] * nl + lun[i]) * nb + blk[i] for i in range(k) if oks[i] and pg[i] == 0]
        if first:                                     # a block starts filling: fault it in
            self.store.prepare_block(np.array(first, dtype=np.int64))
        w = 0 if oob is None else oob.shape[1]
        r0 = rows[0] if k else 0
        if k and all(oks) and rows[-1] - r0 == k - 1 and rows == list(range(r0, r0 + k)):
            self._data[r0:r0 + k] = data[:k]          # a unit's planes: adjacent rows, one copy each
            if oob is None:
                self._oob[r0:r0 + k] = 0
            else:
                self._oob[r0:r0 + k, :w] = oob[:k]
                self._oob[r0:r0 + k, w:] = 0
            status[:k] = _OK
            self.counters["programs"] += k
            return
        done = 0
        for i in range(k):
            if oks[i]:
                r = rows[i]
                self._data[r] = data[i]
                if oob is None:
                    self._oob[r] = 0
                else:
                    self._oob[r, :w] = oob[i]
                    self._oob[r, w:] = 0
                status[i] = _OK
                done += 1
            else:
                status[i] = _PFAIL
        self.counters["programs"] += done
        self.counters["program_fails"] += k - done

    def _tear(self, ch: int, lun: int, blk: int, pl: int, pg: int) -> None:
        """The program the power cut interrupted: when it would have gone down, its page
        is consumed and unreadable (a half-programmed page fails its ECC)."""
        b = ((ch * self.geo.nluns + lun) * self.geo.nblocks + blk) * self.geo.nplanes + pl
        if int(self._bbt[b]) in BAD_STATES or pg != int(self._next[b]):
            return                                    # refused anyway: nothing was programmed
        self._next[b] = pg + 1
        self._spoil(int(np.ravel_multi_index((ch, lun, blk, pg, pl), self._pg_shape)), PageState.TORN)
        self.counters["torn_pages"] += 1

    def skip_pages(self, ch, lun, blk, pl, pg) -> np.ndarray:
        """Consume pages without programming them, in list order: each must be its
        block-plane's next page; it then reads as ECC (PageState.TORN) until its block is
        erased. A device whose write unit spans planes uses it to finish a unit a power
        cut tore (the planes before the cut programmed, the rest not), so no plane of the
        unit reads stale, empty or zero. Counted and cut like programs; a page that is not
        the next, or on a bad block, is refused (PROGRAM_FAIL) and nothing changes."""
        ch, lun, blk, pl, pg = _arr(ch, lun, blk, pl, pg)
        n = pg.size
        status = np.full(n, _PLOSS, dtype=np.uint8)
        k = self._admit(n, "program")
        if k:
            self.mutating()
        for i in range(k):
            b = int(np.ravel_multi_index((ch[i], lun[i], blk[i], pl[i]), self._bp_shape))
            if int(self._bbt[b]) in BAD_STATES or int(pg[i]) != int(self._next[b]):
                status[i] = _PFAIL
                continue
            self._next[b] = int(pg[i]) + 1
            self._spoil(int(np.ravel_multi_index((ch[i], lun[i], blk[i], pg[i], pl[i]), self._pg_shape)),
                        PageState.TORN)
            status[i] = _OK
        return status

    def read_pages(self, ch, lun, blk, pl, pg) -> tuple[np.ndarray, np.ndarray]:
        """(status per page, row per page); rows of failed pages must not be used."""
        ch, lun, blk, pl, pg = _arr(ch, lun, blk, pl, pg)
        n = pg.size
        status = np.full(n, _PLOSS, dtype=np.uint8)
        k = self._admit(n, "read")
        g = self.geo
        cl = (ch * g.nluns + lun) * g.nblocks + blk
        bp = cl[:k] * g.nplanes + pl[:k]
        st = (pg[:k] >= self._next[bp]).astype(np.uint8)          # 1 == _EMPTY
        rate = self.faults.read_error_rate
        if rate:
            err = (st == _OK) & (self.faults._rng.random(k) < rate)
            st[err] = _ECC
            self.counters["read_errors"] += int(err.sum())
        rows = (cl * g.npages + pg) * g.nplanes + pl
        if self._unreadable:
            err = (st == _OK) & (self._pstate[rows[:k]] != 0)
            st[err] = _ECC
            self.counters["read_errors"] += int(err.sum())
            rate = rate or err.any()
        status[:k] = st
        empty = int(st.sum()) if not rate else int(np.count_nonzero(st == _EMPTY))
        self.counters["reads"] += int(np.count_nonzero(st == _OK)) if rate else k - empty
        self.counters["empty_reads"] += empty
        return status, rows

    def readable(self, ch, lun, blk, pl, pg) -> bool:
        """Every one of these pages would read back fine now (programmed, not spoiled, no
        injected read errors, power on): asks without reading, counting or tracing."""
        if not self.faultless:
            return False
        ch, lun, blk, pl, pg = _arr(ch, lun, blk, pl, pg)
        g = self.geo
        cl = (ch * g.nluns + lun) * g.nblocks + blk
        if np.count_nonzero(pg >= self._next[cl * g.nplanes + pl]):
            return False
        return not (self._unreadable and np.count_nonzero(self._pstate[(cl * g.npages + pg) * g.nplanes + pl]))

    @property
    def data_rows(self) -> np.ndarray:
        """(pages, page_nbytes) view of all data; index with rows from read_pages."""
        return self._data

    @property
    def oob_rows(self) -> np.ndarray:
        return self._oob

    # ---------------------------------------------------------------- one MMGR at a time
    def erase(self, ch: int, lun: int, blk: int, pl: int) -> MediaStatus:
        return MediaStatus(int(self.erase_blocks(ch, lun, blk, pl)[0]))

    def program(self, ch: int, lun: int, blk: int, pl: int, pg: int,
                data: np.ndarray, oob: np.ndarray | None) -> MediaStatus:
        """Program one page: data is page_nbytes, oob up to oob_nbytes (rest zero)."""
        return MediaStatus(int(self.program_pages(
            ch, lun, blk, pl, pg, data.reshape(1, -1),
            None if oob is None else oob.reshape(1, -1))[0]))

    def read(self, ch: int, lun: int, blk: int, pl: int, pg: int):
        """(status, data view, oob view) of one page; zeros unless OK.

        The same rules as read_pages in plain integers: a 4 KiB read is the hot path.
        """
        g = self.geo
        if not self._admit(1, "read"):
            return MediaStatus.POWER_LOSS, self._zero_page, self._zero_oob
        cl = (ch * g.nluns + lun) * g.nblocks + blk
        if pg >= self._next[cl * g.nplanes + pl]:
            self.counters["empty_reads"] += 1
            return MediaStatus.EMPTY, self._zero_page, self._zero_oob
        if self.faults.read_error_rate and self.faults.roll(self.faults.read_error_rate):
            self.counters["read_errors"] += 1
            return MediaStatus.ECC, self._zero_page, self._zero_oob
        row = (cl * g.npages + pg) * g.nplanes + pl
        if self._unreadable and self._pstate[row]:
            self.counters["read_errors"] += 1
            return MediaStatus.ECC, self._zero_page, self._zero_oob
        self.counters["reads"] += 1
        return MediaStatus.OK, self._data[row], self._oob[row]

    def charge(self, op: MediaOp, ch: int, lun: int, nbytes: int, arrival_ns: int, pg: int = 0) -> int:
        return self.timing.charge(op, ch, lun, nbytes, arrival_ns, pg)

    # ---------------------------------------------------------------- bad blocks, label
    def set_block_states(self, ch, lun, blk, pl, state: int) -> None:
        """Set bad block table entries (a media mutation when any changes)."""
        ch, lun, blk, pl = _arr(ch, lun, blk, pl)
        bp = np.ravel_multi_index((ch, lun, blk, pl), self._bp_shape)
        if bp.size and np.any(self._bbt[bp] != state):
            self.mutating()
            self._bbt[bp] = state

    def label(self) -> MediaLabel:
        """The media label with live lifetime counters (a copy)."""
        return self.store.live_label()

    def update_label(self, **fields) -> bool:
        """Record label fields (a media mutation when any changes); False when nothing
        changed or the power is gone."""
        if not self.powered:
            return False
        return self.store.update_label(**fields)

    def set_read_only(self, reason: str) -> None:
        """Place the media in read-only mode for good (label.read_only, persisted): the
        device accepts no more writes. Logs one warning with the reason."""
        if self.read_only and (self.store.label.read_only or self.store.readonly):
            return
        self.read_only = True
        log.warning("VOLT: media placed in read-only mode: %s", reason)
        if not self.store.readonly:
            self.update_label(read_only=1)

    # ---------------------------------------------------------------- power
    def flush(self) -> None:
        self.store.flush()

    def shutdown(self) -> None:
        """Controller shutdown: durable, and recorded as a clean stop (nothing after a cut)."""
        if self.powered:
            self.store.shutdown()

    def close(self) -> None:
        """Power off: a stop is clean only after a controller shutdown (`shutdown`) with no
        media change since; otherwise the store records an unsafe shutdown."""
        self._data = self._oob = self._next = self._bbt = self._erases = self._pstate = None
        self.store.close()
