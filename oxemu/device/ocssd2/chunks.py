"""Chunks on VOLT (Open-Channel SSD 2.0, 1.2.4): a chunk is one block on every plane of a
parallel unit (PU = LUN, group = channel); its logical block k lives in write unit
k // ws_min -- the block's page of that number on every plane -- at plane
(k % ws_min) // sectors, sector k % sectors. A ws_min unit is one multi-plane page.

Nothing here keeps chunk state of its own: it is read from what VOLT persists, so it
survives power cuts and restarts with the data, consistently with it --

- offline: a plane of the block is bad (factory or grown) in VOLT's bad block table;
- the write pointer: the block-planes' next page, in units (ws_min sectors each);
- free: nothing written since the last erase; open: partly written; closed: written to
  the end, or EARLY_CLOSE failed units in it (units whose program failed: VOLT keeps
  each such page as PROGRAM_FAILED until the erase);
- the wear-level index: from the planes' erase counts.

The only derived figures kept in memory, the failed (and torn) units per chunk, are
counted from VOLT's page states at power-on. A power cut between the planes of one unit leaves the
planes' next pages apart; `settle` makes them agree again at power-on (the unit torn by
a cut in a write is consumed on every plane; a reset the cut interrupted is finished).
"""
import logging

import numpy as np

from ...volt import MediaStatus, PageState
from ...wire import ChunkState, ChunkType, CHUNK_DESC_DTYPE
from ..controller import PowerLost

log = logging.getLogger(__name__)

EARLY_CLOSE = 2             # failed units that make the device close a chunk early
ENDURANCE = 3000            # rated program/erase cycles of the MLC-like media: wli 255 there
_BAD = (1, 2)               # BlockState.BAD, GRWN_BAD


class Chunks:
    """The chunk view of a VOLT media: state, write pointer, wear; settle and counts."""

    def __init__(self, volt, lbaf):
        self.volt = volt
        g = self.geo = volt.geo
        self.lbaf = lbaf
        self.ws_min = g.nplanes * g.nsectors
        self.clba = g.npages * self.ws_min
        self.shape = (g.nchannels, g.nluns, g.nblocks)
        self.nchunks = g.nchannels * g.nluns * g.nblocks
        store = volt.store
        self._next = store.next_page                 # (ch, lun, blk, pl)
        self._bbt = store.bbt
        self._erases = store.erase_count
        self._pstate = store.page_state              # (ch, lun, blk, pg, pl)
        self.fails = np.zeros(self.shape, dtype=np.int32)       # units whose program failed
        self.spoiled = np.zeros(self.shape, dtype=np.int32)     # ... or a power cut tore
        self.count_fails()

    # ------------------------------------------------------------ power-on
    def count_fails(self) -> None:
        """Failed (and torn) units per chunk, from the page states VOLT keeps."""
        ps = self._pstate
        self.fails[:] = (ps == PageState.PROGRAM_FAILED).any(axis=-1).sum(axis=-1)
        self.spoiled[:] = (ps != PageState.OK).any(axis=-1).sum(axis=-1)

    def unit_spoiled(self, ch: int, lun: int, blk: int, units: np.ndarray) -> np.ndarray:
        """Bool per unit of one chunk: a plane of it failed or was torn. A unit is written
        whole or not at all: none of its logical blocks reads then."""
        return (self._pstate[ch, lun, blk, units] != PageState.OK).any(axis=-1)

    def settle(self, core) -> int:
        """Make every chunk's planes agree on their next page (power-on, writable media):
        planes behind a torn unit have its page consumed (VOLT skip: it reads as ECC);
        a reset a cut interrupted -- plane 0 erased, later planes not -- is finished by
        erasing the rest. Returns the chunks settled. Media operations: a cut may strike
        here too (PowerLost), and the next power-on settles again."""
        nxt = self._next
        bad = np.isin(self._bbt, _BAD).any(axis=-1)
        uneven = np.argwhere((nxt.min(axis=-1) != nxt.max(axis=-1)) & ~bad)
        for ch, lun, blk in uneven.tolist():
            v = nxt[ch, lun, blk].astype(np.int64)
            hi = int(v.max())
            if v[0] == 0:                                      # a reset, cut after plane 0
                pls = np.flatnonzero(v > 0)
                n = pls.size
                core.erase_blocks([ch] * n, [lun] * n, [blk] * n, pls)
                log.info("2.0: chunk %d/%d/%d: finished the reset a power cut interrupted", ch, lun, blk)
            else:                                              # a write unit, cut between planes
                for pl in np.flatnonzero(v < hi).tolist():
                    pages = list(range(int(v[pl]), hi))
                    k = len(pages)
                    st = self.volt.skip_pages([ch] * k, [lun] * k, [blk] * k, [pl] * k, pages)
                    if st.size and st[-1] == MediaStatus.POWER_LOSS:
                        raise PowerLost()
                log.info("2.0: chunk %d/%d/%d: consumed the unit a power cut tore", ch, lun, blk)
        return len(uneven)

    # ------------------------------------------------------------ one chunk
    def offline(self, ch: int, lun: int, blk: int) -> bool:
        return any(s in _BAD for s in self._bbt[ch, lun, blk].tolist())

    def wp_units(self, ch: int, lun: int, blk: int) -> int:
        """The write pointer in units: the planes' furthest next page (they agree once settled)."""
        return max(self._next[ch, lun, blk].tolist())

    def state(self, ch: int, lun: int, blk: int) -> tuple[ChunkState, int]:
        """(state, write pointer in logical blocks) of one chunk, in plain integers (every
        command asks)."""
        if self.offline(ch, lun, blk):
            return ChunkState.OFFLINE, 0
        u = self.wp_units(ch, lun, blk)
        if u == 0:
            return ChunkState.FREE, 0
        if u >= self.geo.npages or int(self.fails[ch, lun, blk]) >= EARLY_CLOSE:
            return ChunkState.CLOSED, u * self.ws_min
        return ChunkState.OPEN, u * self.ws_min

    def wli(self, ch: int, lun: int, blk: int) -> int:
        return wear_index(int(self._erases[ch, lun, blk].max()))

    # ------------------------------------------------------------ every chunk
    def states(self):
        """(state u8, wp u64, wli u8) arrays over all chunks, (ch, lun, blk) order."""
        bad = np.isin(self._bbt, _BAD).any(axis=-1)
        u = self._next.max(axis=-1).astype(np.int64)
        st = np.where(u == 0, int(ChunkState.FREE), int(ChunkState.OPEN)).astype(np.uint8)
        st[(u >= self.geo.npages) | (self.fails >= EARLY_CLOSE) & (u > 0)] = int(ChunkState.CLOSED)
        st[bad] = int(ChunkState.OFFLINE)
        wp = np.where(bad, 0, u * self.ws_min).astype(np.uint64)
        wli = wear_index(self._erases.max(axis=-1).astype(np.int64))
        return st.reshape(-1), wp.reshape(-1), wli.reshape(-1)

    def descriptors(self) -> np.ndarray:
        """The chunk information log page (0xCA): one descriptor per chunk, group-major."""
        st, wp, wli = self.states()
        out = np.zeros(self.nchunks, dtype=CHUNK_DESC_DTYPE)
        out["cs"], out["ct"], out["wli"], out["wp"] = st, int(ChunkType.SEQ_WRITE), wli, wp
        out["cnlb"] = self.clba
        ch, lun, blk = np.unravel_index(np.arange(self.nchunks), self.shape)
        out["slba"] = self.lbaf.slba(ch, lun, blk)
        return out

    def mean_wli(self) -> float:
        st, _, wli = self.states()
        good = st != ChunkState.OFFLINE
        return float(wli[good].mean()) if good.any() else 0.0


def wear_index(erases):
    """Wear-level index: erase cycles spent, scaled so that ENDURANCE reads 255."""
    return np.minimum(255, np.asarray(erases) * 255 // ENDURANCE).astype(np.uint8) \
        if isinstance(erases, np.ndarray) else min(255, int(erases) * 255 // ENDURANCE)
