"""The write buffer: a ring of 4 KiB entries between user/GC writes and the media (pblk-rb.c).

Writes land here and are acknowledged at once; the writer takes whole write units off the
ring tail and programs them straight from it (the ring lives in guest RAM, so the device
DMAs from it with no bounce copy). Entries stay readable until the media holds them.

Positions `mem` (next entry to fill) and `sync` (first entry not yet on media) only grow;
an entry's slot is position % nentries.

On Open-Channel SSD 2.0 the ring also serves what the device will not read back yet: the
last mw_cunits sectors written to each open chunk (Linux 4.17+ pblk sizes its buffer for
them). `keep` entries already on media are then never overwritten -- the ring holds
`keep` more entries than the writer may fill -- and `lookup` finds a media address among
them (`remember` notes where each entry went). The writer is synchronous, so pblk's separate
`subm` and `sync` pointers coincide. Each entry records its LBA and what kind of write it
is (user, GC, pad, TRIM) so the rate limiter can count user and GC entries apart; a GC
entry also records the media address it was copied from (`src`), so GC work that cannot be
written can be undone while the victim still holds the data.
"""
import numpy as np

from .metadata import Kind

NR_ENTRIES = 2048            # pblk_rb_calculate_size for this geometry
_USER = int(Kind.USER)       # a plain int: numpy stores it faster than the enum


class WriteBuffer:
    """struct pblk_rb over a guest-RAM data area of nentries * sector_nbytes bytes."""

    __slots__ = ("data", "keep", "kind", "lba", "media", "media_pos", "mem", "n", "ngc", "nuser", "pad_dist",
                 "secb", "src", "sync")

    def __init__(self, data: np.ndarray, nentries: int = NR_ENTRIES, sector_nbytes: int = 4096, keep: int = 0):
        if data.nbytes < nentries * sector_nbytes:
            raise ValueError("write buffer data area too small")
        self.n = nentries
        self.secb = sector_nbytes
        self.data = data.reshape(-1)[:nentries * sector_nbytes].reshape(nentries, sector_nbytes)
        self.lba = np.full(nentries, -1, dtype=np.int64)
        self.kind = np.zeros(nentries, dtype=np.uint8)
        self.src = np.full(nentries, -1, dtype=np.int64)
        self.mem = 0
        self.sync = 0
        self.nuser = 0          # user entries between sync and mem (pblk_rl rb_user_cnt)
        self.ngc = 0            # GC entries between sync and mem (rb_gc_cnt)
        self.pad_dist: dict[int, int] = {}     # pad entries -> times a unit was padded so (pad_dist)
        self.keep = keep                       # entries on media kept readable here (2.0: mw_cunits' share)
        self.media = np.full(nentries, -1, dtype=np.int64) if keep else None     # slot -> media address
        self.media_pos = np.full(nentries, -1, dtype=np.int64) if keep else None  # ... of the entry at this position

    # ------------------------------------------------------------ occupancy
    @property
    def count(self) -> int:
        """Entries not yet on media."""
        return self.mem - self.sync

    @property
    def space(self) -> int:
        """Entries the writer may fill: the ring less what it holds and what it keeps."""
        return self.n - (self.mem - self.sync) - min(self.keep, self.sync)

    def contiguous_space(self) -> int:
        """Free entries from `mem` up to the end of the ring (or to `sync`)."""
        return min(self.space, self.n - self.mem % self.n)

    def slots(self, pos: int, k: int) -> np.ndarray:
        return np.arange(pos, pos + k, dtype=np.int64) % self.n

    # ------------------------------------------------------------ filling
    def put_user(self, lba: int, data: np.ndarray, k: int) -> int:
        """k user sectors for LBAs lba..lba+k-1; returns the position of the first."""
        pos = self.mem
        start = pos % self.n
        first = min(k, self.n - start)
        d = data.reshape(k, self.secb)
        self.data[start:start + first] = d[:first]
        self.lba[start:start + first] = np.arange(lba, lba + first, dtype=np.int64)
        self.kind[start:start + first] = Kind.USER
        if first < k:
            rest = k - first
            self.data[:rest] = d[first:]
            self.lba[:rest] = np.arange(lba + first, lba + k, dtype=np.int64)
            self.kind[:rest] = Kind.USER
        self.mem = pos + k
        self.nuser += k
        return pos

    def put_one(self, lba: int, sector: np.ndarray) -> int:
        """One user sector: the 4 KiB fast path."""
        pos = self.mem
        slot = pos % self.n
        self.data[slot] = sector
        self.lba[slot] = lba
        self.kind[slot] = _USER
        self.mem = pos + 1
        self.nuser += 1
        return pos

    def put(self, lbas: np.ndarray, kinds, rows: np.ndarray | None, src=-1) -> np.ndarray:
        """Entries with given LBAs and kinds; rows = their data (k, sector) or None for zeros;
        src = the media addresses GC entries were copied from. Returns their slots."""
        k = len(lbas)
        sl = self.slots(self.mem, k)
        if rows is None:
            self.data[sl] = 0
        else:
            self.data[sl] = rows
        self.lba[sl] = lbas
        self.kind[sl] = kinds
        self.src[sl] = src
        self.mem += k
        kinds = np.broadcast_to(np.asarray(kinds, dtype=np.uint8), (k,))
        self.nuser += int(np.count_nonzero(kinds == Kind.USER))
        self.ngc += int(np.count_nonzero(kinds == Kind.GC))
        return sl

    def reserve(self, k: int) -> int:
        """Slot of k contiguous entries at `mem` for the caller to fill in place (GC reads
        straight into the ring); commit() makes them part of the ring."""
        start = self.mem % self.n
        if k > self.contiguous_space():
            raise ValueError("write buffer: no contiguous room")
        return start

    def commit(self, lbas: np.ndarray, kind: int, src=-1) -> int:
        k = len(lbas)
        start = self.mem % self.n
        self.lba[start:start + k] = lbas
        self.kind[start:start + k] = kind
        self.src[start:start + k] = src
        pos = self.mem
        self.mem += k
        if kind == Kind.USER:
            self.nuser += k
        elif kind == Kind.GC:
            self.ngc += k
        return pos

    def pad(self, k: int) -> None:
        """k zero entries (pblk pads a write unit on flush)."""
        if k:
            self.put(np.full(k, -1, dtype=np.int64), Kind.PAD, None)
            self.pad_dist[k] = self.pad_dist.get(k, 0) + 1

    # ------------------------------------------------------------ draining
    def tail(self, k: int) -> int:
        """Slot of the k entries at `sync`; they never wrap (units divide the ring)."""
        start = self.sync % self.n
        if start + k > self.n or k > self.count:
            raise ValueError("write buffer: tail request crosses the ring end or the head")
        return start

    def drop(self) -> None:
        """Forget every entry not yet on media (only when none of them is needed)."""
        self.sync = self.mem
        self.nuser = self.ngc = 0

    def remember(self, slots: np.ndarray, positions: np.ndarray, addrs: np.ndarray) -> None:
        """Entries at these slots (ring positions) are on media at `addrs` (flat media
        addresses): `lookup` finds them there until their slots are filled again."""
        if self.keep:
            self.media[slots] = addrs
            self.media_pos[slots] = positions

    def lookup(self, addrs: np.ndarray) -> np.ndarray:
        """The slot still holding each media address, or -1."""
        out = np.full(addrs.size, -1, dtype=np.int64)
        if not self.keep:
            return out
        live = (self.media_pos >= self.sync - self.keep) & (self.media_pos < self.sync)   # kept, intact
        for i, a in enumerate(addrs.tolist()):
            hit = np.flatnonzero((self.media == a) & live)
            if hit.size:
                out[i] = int(hit[-1])
        return out

    def release(self, k: int) -> None:
        """The k entries at `sync` are on media: their slots may be reused."""
        start = self.sync % self.n
        kinds = self.kind[start:start + k]
        self.nuser -= int(np.count_nonzero(kinds == Kind.USER))
        self.ngc -= int(np.count_nonzero(kinds == Kind.GC))
        self.sync += k
