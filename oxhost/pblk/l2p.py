"""The target's mapping state and the only code that changes it: the L2P table (pblk's
trans_map), the valid sector count of every line, the buffer position each line's release
waits for, and every line's LBA list (pblk-core.c, pblk-map.c, pblk-gc.c, pblk-recovery.c).

The L2P holds one int64 per LBA, in a numpy array so whole requests are looked up and
updated at once:

    -1          empty: never written or discarded (reads return zeros, no device I/O)
    <= -2       in the write buffer, entry slot = -2 - value (pblk's cacheline PPA)
    >= 0        on media at flat address line * sec_per_line + line sector

The L2P is the only owner of this state: what it exposes (`map`, `vsc`, `inval_pos`,
`held`, `lba`) are read-only numpy views, and the core, the writer, GC and recovery change
it only through the named operations below (write, discard, commit, requeue, GC move,
release, replay); `check()` states the invariants they keep, and tests run it after every
step.
"""
import numpy as np

from .errors import InvariantError
from .metadata import ADDR_EMPTY, ADDR_TRIM
from .trim import runs

EMPTY = -1


def cache_code(slots):
    """L2P value for write-buffer slots."""
    return -2 - slots


def cache_slot(values):
    return -2 - values


class L2P:
    """The L2P table, valid counts (`vsc`), release positions (`inval_pos`, plus `held` for
    lines waiting on discards whose TRIM sector is not yet in the buffer), the per-line LBA
    lists (`lba`: the LBA of every programmed line sector, ADDR_TRIM for TRIM sectors,
    ADDR_EMPTY for padding, metadata, failed programs and sectors not yet written) and the
    media addresses GC found unreadable (`unreadable`, a frozenset). Callers read them
    through read-only views (assigning into one raises ValueError); only these methods
    change them."""

    __slots__ = ("_held", "_inval_pos", "_lba", "_map", "_unreadable", "_vsc", "held", "inval_pos", "lba", "map",
                 "nlines", "nsectors", "nslots", "spl", "vsc")

    def __init__(self, nsectors: int, nlines: int = 1, sec_per_line: int = 1, nslots: int | None = None):
        self.nsectors = nsectors
        self.nlines = nlines
        self.spl = sec_per_line
        self.nslots = sec_per_line if nslots is None else nslots
        self._map = np.full(nsectors, EMPTY, dtype=np.int64)
        self._vsc = np.zeros(nlines, dtype=np.int64)
        # the write-buffer position (entries ever put) past the last write that invalidated a
        # sector of the line: the line may be erased only once that write is on media, or a
        # crash could lose both copies
        self._inval_pos = np.zeros(nlines, dtype=np.int64)
        self._held = np.zeros(nlines, dtype=bool)
        self._lba = np.full((nlines, self.nslots), ADDR_EMPTY, dtype=np.int64)
        self._unreadable: frozenset[int] = frozenset()
        self.map = _read_only(self._map)
        self.vsc = _read_only(self._vsc)
        self.inval_pos = _read_only(self._inval_pos)
        self.held = _read_only(self._held)
        self.lba = _read_only(self._lba)

    # ------------------------------------------------------------ queries
    @property
    def unreadable(self) -> frozenset[int]:
        """Media addresses of valid sectors GC could not read."""
        return self._unreadable

    def lookup(self, lba: int, n: int) -> np.ndarray:
        return self.map[lba:lba + n]

    def cached_at(self, lbas: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Bool per entry: the LBA still points at that write-buffer slot."""
        lbas = np.asarray(lbas, dtype=np.int64)
        ok = lbas >= 0
        out = np.zeros(lbas.size, dtype=bool)
        out[ok] = self._map[lbas[ok]] == cache_code(np.asarray(slots)[ok])
        return out

    def still_at(self, line: int, paddrs: np.ndarray) -> np.ndarray:
        """Bool per line sector: it holds the current copy of its LBA."""
        lbas = self._lba[line, paddrs]
        ok = lbas >= 0
        ok[ok] = self._map[lbas[ok]] == line * self.spl + paddrs[ok]
        return ok

    def trim_paddrs(self, line: int) -> np.ndarray:
        return np.flatnonzero(self._lba[line] == ADDR_TRIM)

    def present(self, lines) -> np.ndarray:
        """Bool per LBA: some sector of these lines was written for it (any version)."""
        out = np.zeros(self.nsectors, dtype=bool)
        ids = np.asarray(list(lines), dtype=np.int64)
        if ids.size:
            rows = self._lba[ids].reshape(-1)
            rows = rows[(rows >= 0) & (rows < self.nsectors)]
            out[rows] = True
        return out

    def stuck(self, line: int) -> int:
        """Valid sectors of the line GC could not read (they stay mapped and keep failing)."""
        if not self._unreadable:
            return 0
        lo, hi = line * self.spl, (line + 1) * self.spl
        n = 0
        for a in self._unreadable:
            if lo <= a < hi:
                x = int(self._lba[line, a - lo])
                n += x >= 0 and int(self._map[x]) == a
        return n

    def stuck_total(self) -> int:
        """Valid sectors GC found unreadable, over all lines."""
        n = 0
        for a in self._unreadable:
            x = int(self._lba[a // self.spl, a % self.spl])
            n += x >= 0 and int(self._map[x]) == a
        return n

    def valid_counts(self) -> np.ndarray:
        """Valid sectors per line, from scratch."""
        media = self._map[self._map >= 0]
        return np.bincount(media // self.spl, minlength=self.nlines).astype(np.int64)

    # ------------------------------------------------------------ user writes and discards
    def write_one(self, lba: int, slot: int, pos: int) -> None:
        """One user sector entered buffer slot `slot`; pos = buffer position after it."""
        m = self._map
        old = int(m[lba])
        m[lba] = -2 - slot
        if old >= 0:
            li = old // self.spl
            self._vsc[li] -= 1
            self._inval_pos[li] = pos

    def write(self, lba: int, k: int, slots: np.ndarray, pos: int) -> None:
        """k user sectors from lba entered the buffer at `slots`."""
        view = self._map[lba:lba + k]
        old = view[view >= 0]
        view[:] = cache_code(slots)
        if old.size:
            self._invalidate(old, pos)

    def discard(self, lba: int, k: int, pos: int | None) -> np.ndarray:
        """Unmap lba..lba+k-1. Returns the (slba, nlb) runs that were mapped: the TRIM records
        the discard needs (an LBA already unmapped is covered by an earlier record, or has
        no copy at all). pos None: the records are not in the buffer yet, and lines losing
        valid sectors are held until `trims_placed`."""
        view = self._map[lba:lba + k]
        mapped = view != EMPTY
        if not mapped.any():
            return np.empty((0, 2), dtype=np.int64)
        old = view[view >= 0]
        view[:] = EMPTY
        if old.size:
            self._invalidate(old, pos)
        return runs(mapped, lba)

    def _invalidate(self, old: np.ndarray, pos: int | None) -> None:
        lines = old // self.spl
        self._vsc -= np.bincount(lines, minlength=self.nlines)
        if pos is None:
            self._held[lines] = True
        else:
            self._inval_pos[lines] = pos

    def trims_placed(self, pos: int) -> None:
        """The pending TRIM records entered the buffer, ending at position pos."""
        if self._held.any():
            self._inval_pos[self._held] = np.maximum(self._inval_pos[self._held], pos)
            self._held[:] = False

    # ------------------------------------------------------------ the writer
    def commit(self, line: int, paddrs: np.ndarray, lbas: np.ndarray, slots: np.ndarray,
               ok: np.ndarray | None = None) -> int:
        """Buffer entries were programmed at line sectors `paddrs` (`ok`: which succeeded).
        The line's LBA list records them; LBAs still pointing at their buffer slot now point
        at the media (pblk_update_map_dev). Returns how many became valid there."""
        row = self._lba[line]
        if ok is None:
            row[paddrs] = lbas
            sel = lbas >= 0
        else:
            row[paddrs] = np.where(ok, lbas, ADDR_EMPTY)
            sel = ok & (lbas >= 0)
        if not sel.all():
            lbas, slots, paddrs = lbas[sel], slots[sel], paddrs[sel]
        upd = self._map[lbas] == cache_code(slots)
        if not upd.all():
            lbas, paddrs = lbas[upd], paddrs[upd]
        self._map[lbas] = line * self.spl + paddrs
        self._vsc[line] += lbas.size
        return int(lbas.size)

    def requeue(self, lbas: np.ndarray, slots: np.ndarray, failed_pos: int, pos: int) -> None:
        """Entries whose program failed were put in the buffer again at `slots` (the caller
        checked with cached_at that they still matter). Lines a write at or after buffer
        position failed_pos invalidated now wait for the buffer to reach pos: their newer
        copies are not on media yet."""
        if len(lbas):
            self._map[lbas] = cache_code(slots)
        late = self._inval_pos > failed_pos
        self._inval_pos[late] = np.maximum(self._inval_pos[late], pos)

    # ------------------------------------------------------------ GC
    def gc_move(self, line: int, paddrs: np.ndarray, lbas: np.ndarray, slots: np.ndarray, pos: int) -> None:
        """Valid sectors of a victim line were copied into the buffer (pblk_update_map_gc)."""
        self._map[lbas] = cache_code(slots)
        self._vsc[line] -= lbas.size
        self._inval_pos[line] = max(int(self._inval_pos[line]), pos)

    def gc_revert(self, lbas: np.ndarray, slots: np.ndarray, srcs: np.ndarray) -> np.ndarray:
        """Undo GC moves still in the buffer: LBAs pointing at those slots point back at the
        media copies they came from (their victims are not erased). Returns the lines that
        got valid sectors back."""
        back = self.cached_at(lbas, slots) & (srcs >= 0)
        lbas, srcs = lbas[back], srcs[back]
        self._map[lbas] = srcs
        lines = srcs // self.spl
        self._vsc += np.bincount(lines, minlength=self.nlines)
        return np.unique(lines)

    def gc_hold(self, line: int, pos: int) -> None:
        """The victim's release waits for what GC put in the buffer up to pos."""
        self._inval_pos[line] = max(int(self._inval_pos[line]), pos)

    def mark_unreadable(self, addrs) -> None:
        self._unreadable = self._unreadable | {int(a) for a in np.atleast_1d(addrs)}

    def releasable(self, line: int, sync: int) -> bool:
        return self._vsc[line] <= 0 and not self._held[line] and self._inval_pos[line] <= sync

    def release(self, line: int) -> None:
        """The line is being freed: nothing on it is valid or listed any more."""
        self._lba[line] = ADDR_EMPTY
        self._vsc[line] = 0
        self._inval_pos[line] = 0
        self._held[line] = False
        if self._unreadable:
            lo, hi = line * self.spl, (line + 1) * self.spl
            self._unreadable = frozenset(a for a in self._unreadable if not lo <= a < hi)

    def open_line(self, line: int) -> None:
        self._lba[line] = ADDR_EMPTY

    # ------------------------------------------------------------ recovery
    def replay_line(self, line: int, lbas: np.ndarray, trims: dict) -> int:
        """Recovery: a line's LBA list, in log order after every line replayed before it.
        Data maps its LBAs, a TRIM sector (trims: line sector -> records) unmaps its ranges;
        each applies after what precedes it in the line and before what follows. Returns
        the number of LBAs the line maps."""
        lbas = np.asarray(lbas, dtype=np.int64)
        self._lba[line] = lbas
        base = line * self.spl
        start = 0
        n = 0
        for p in sorted(trims):
            n += self._load(lbas[start:p], base + start)
            for s, k in np.asarray(trims[p], dtype=np.int64).reshape(-1, 2).tolist():
                self._map[max(s, 0):max(0, min(s + k, self.nsectors))] = EMPTY
            start = p + 1
        return n + self._load(lbas[start:], base + start)

    def _load(self, lbas: np.ndarray, first: int) -> int:
        """Map LBAs to consecutive addresses from `first`; a later address wins."""
        addrs = first + np.arange(lbas.size, dtype=np.int64)
        sel = (lbas >= 0) & (lbas < self.nsectors)
        lbas, addrs = lbas[sel], addrs[sel]
        if lbas.size == 0:
            return 0
        uniq, last = np.unique(lbas[::-1], return_index=True)
        self._map[uniq] = addrs[::-1][last]
        return int(uniq.size)

    def recount(self) -> None:
        """Recovery done: valid counts from the table; nothing waits on the buffer."""
        self._vsc[:] = self.valid_counts()
        self._inval_pos[:] = 0
        self._held[:] = False

    # ------------------------------------------------------------ invariants
    def check(self, rb=None, free_lines=()) -> None:
        """Raise InvariantError unless: valid counts equal a recount from the table and none
        is negative; every media mapping lies in a line sector whose LBA list names that LBA;
        every buffer mapping names a live entry written for that LBA; lines in `free_lines`
        hold nothing. These hold after every public operation."""
        errs = []
        if (self._vsc < 0).any():
            errs.append(f"negative valid counts on lines {np.flatnonzero(self._vsc < 0).tolist()}")
        counted = self.valid_counts()
        if not np.array_equal(counted, self._vsc):
            bad = np.flatnonzero(counted != self._vsc)
            errs.append("valid counts differ from the L2P on lines "
                        + ", ".join(f"{i} ({int(self._vsc[i])} vs {int(counted[i])})" for i in bad[:8]))
        media = np.flatnonzero(self._map >= 0)
        if media.size:
            addrs = self._map[media]
            if (addrs >= self.nlines * self.spl).any():
                errs.append("media addresses beyond the last line")
            else:
                line, paddr = np.divmod(addrs, self.spl)
                if (paddr >= self.nslots).any():
                    errs.append("media addresses inside a line's emeta")
                else:
                    wrong = self._lba[line, paddr] != media
                    if wrong.any():
                        errs.append(f"{int(wrong.sum())} LBAs map to line sectors listed for another LBA "
                                    f"(first LBA {int(media[wrong][0])})")
        cache = np.flatnonzero(self._map <= -2)
        if cache.size and rb is not None:
            slots = cache_slot(self._map[cache])
            if (slots >= rb.n).any():
                errs.append("buffer mappings beyond the ring")
            else:
                live = (slots - rb.sync) % rb.n < rb.count
                if not live.all():
                    errs.append(f"{int((~live).sum())} LBAs map to buffer entries already written")
                if (rb.lba[slots] != cache).any():
                    errs.append("LBAs map to buffer entries of other LBAs")
        for ln in free_lines:
            if self._vsc[ln] or (self._lba[ln] != ADDR_EMPTY).any() or self._held[ln]:
                errs.append(f"free line {ln} still holds valid sectors or an LBA list")
        for a in self._unreadable:
            if not 0 <= a < self.nlines * self.spl:
                errs.append(f"unreadable address {a} outside the media")
                break
        if errs:
            raise InvariantError("pblk mapping: " + "; ".join(errs))


def _read_only(a: np.ndarray) -> np.ndarray:
    """A view of `a` that refuses assignment: the L2P's arrays as others see them."""
    v = a.view()
    v.flags.writeable = False
    return v
