"""The L2P table: where every exported LBA lives (pblk's trans_map, pblk-core.c).

One int64 per LBA, in a numpy array so whole requests are looked up and updated at once:

    -1          empty: never written or discarded (reads return zeros, no device I/O)
    <= -2       in the write buffer, entry slot = -2 - value (pblk's cacheline PPA)
    >= 0        on media at flat address line * sec_per_line + line sector

Flat media addresses keep the line of a mapping one division away, which is what valid
counts and GC need; the device PPA is derived from them only when the media is read.
"""
import numpy as np

EMPTY = -1


def cache_code(slots):
    """L2P value for write-buffer slots."""
    return -2 - slots


def cache_slot(values):
    return -2 - values


class L2P:
    """The table and the few ways it changes; callers may read `map` directly."""

    __slots__ = ("map", "nsectors")

    def __init__(self, nsectors: int):
        self.nsectors = nsectors
        self.map = np.full(nsectors, EMPTY, dtype=np.int64)

    def lookup(self, lba: int, n: int) -> np.ndarray:
        return self.map[lba:lba + n]

    def replace_range(self, lba: int, n: int, values) -> np.ndarray:
        """Point lba..lba+n-1 at new values; returns the media addresses they left."""
        view = self.map[lba:lba + n]
        old = view[view >= 0].copy()
        view[:] = values
        return old

    def commit(self, lbas: np.ndarray, slots: np.ndarray, addrs: np.ndarray) -> np.ndarray:
        """Entries written to media: LBAs still pointing at their buffer slot now point at
        the media address (pblk_update_map_dev). Returns the mask of those updated; the
        others were overwritten or discarded while in the buffer."""
        upd = self.map[lbas] == cache_code(slots)
        self.map[lbas[upd]] = addrs[upd]
        return upd

    def move_if(self, lbas: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """GC: remap LBAs whose mapping is still `old` (pblk_update_map_gc). Returns the mask."""
        ok = self.map[lbas] == old
        self.map[lbas[ok]] = new[ok]
        return ok

    def load_line(self, lbas: np.ndarray, addrs: np.ndarray) -> int:
        """Recovery: map LBAs to addresses written later in the log than anything loaded
        so far. Within the call a later address wins over an earlier one for the same LBA."""
        sel = (lbas >= 0) & (lbas < self.nsectors)
        lbas, addrs = lbas[sel], addrs[sel]
        if lbas.size == 0:
            return 0
        rev_lbas = lbas[::-1]
        uniq, first = np.unique(rev_lbas, return_index=True)
        self.map[uniq] = addrs[::-1][first]
        return int(uniq.size)

    def valid_counts(self, sec_per_line: int, nlines: int) -> np.ndarray:
        """Valid sectors per line, from scratch."""
        media = self.map[self.map >= 0]
        return np.bincount(media // sec_per_line, minlength=nlines).astype(np.int64)
