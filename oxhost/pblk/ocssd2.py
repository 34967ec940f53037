"""pblk's view of an Open-Channel SSD 2.0 device: the part Linux's lightnvm core played
between pblk and the 2.0 driver from 4.17 on (nvm_geo in both versions, the PPA
conversion, chunk metadata for bad blocks).

pblk addresses a device as the 1.2 library does: a geometry, PPAs, plane pages, erases
and bad block tables. `ChunkDevice` presents a lightnvm2 Device20 that way:

- geometry: groups are channels, parallel units LUNs, chunks blocks; pblk's write unit
  is `ws_opt` sectors, so a "page" is a ws_opt unit and its "planes" are the ws_min
  units in it (a half-written unit after a cut is then half its planes, as on 1.2).
  The PPA format is the 2.0 LBA format itself (sector, then plane and page bits in the
  logical block field): a PPA is the chunk LBA, with no conversion;
- I/O: reads and writes are vector commands; an erase resets each chunk named once,
  skipping free chunks (2.0 resets only closed ones: an open chunk is padded to its end
  first); the 2.0 statuses are answered as pblk knows them on 1.2 -- a write that
  failed (next unit, early close, out of order) as a program failure, an unwritten
  logical block as an empty page, an offline chunk as uncorrectable;
- bad blocks: a 2.0 device has no bad block table. `bbt_get` comes from the chunk report
  (an offline chunk is grown bad: chunk metadata instead of the bad block table);
  `bbt_mark` resets the chunk so the device takes it offline when its programs failed,
  and remembers the rest for the session (pblk 4.17+ marks nothing on a 2.0 device).
"""
import logging

import numpy as np

from oxemu.wire import BlockState, ChunkState, NvmOpc, PMode, Status
from oxhost.lightnvm import BbTable, LightnvmError, NvmError
from oxhost.lightnvm.geo import Geo, Ppaf

from .errors import PblkError

_FAIL_WRITE = int(Status.NVM_FAIL_WRITE)
_EMPTY = int(Status.NVM_EMPTY_PAGE)
_FAIL_ECC = int(Status.NVM_FAIL_ECC)
_PROTECTED = int(Status.NS_WRITE_PROTECTED | Status.DNR)
_UNWRITTEN = int(Status.UNWRITTEN_BLOCK | Status.DNR)
_FILLER_OOB = 0xFF

log = logging.getLogger(__name__)


def _log2(n: int) -> int | None:
    return n.bit_length() - 1 if n > 0 and not n & (n - 1) else None


class ChunkDevice:
    """A Device20 with the face pblk drives (the lightnvm 1.2 Device's calls it uses)."""

    version = "2.0"

    def __init__(self, dev20):
        g = self.geo20 = dev20.geo
        self.dev20 = dev20
        self.driver = dev20.driver
        self.pmode = PMode.SNGL
        ws_min, ws_opt = g.ws_min, g.ws_opt
        lmin, lopt = _log2(ws_min), _log2(ws_opt)
        if lmin is None or lopt is None or ws_opt % ws_min or g.nsectr % ws_opt:
            raise PblkError(f"pblk needs power-of-two write sizes dividing the chunk: ws_min {ws_min}, "
                            f"ws_opt {ws_opt}, chunk {g.nsectr}")
        f = g.lbaf
        npl = ws_opt // ws_min
        lpl = lopt - lmin
        self.mw_cunits = g.mw_cunits
        self.ws_opt = ws_opt
        self.geo = Geo(nchannels=g.npugrp, nluns=g.npunit, nplanes=npl, nblocks=g.nchunk,
                       npages=g.nsectr // ws_opt, nsectors=ws_min, sector_nbytes=g.nbytes,
                       page_nbytes=ws_min * g.nbytes, meta_nbytes=g.nbytes_oob,
                       ppaf=Ppaf(ch_off=f.pugrp_off, ch_len=f.pugrp_len, lun_off=f.punit_off, lun_len=f.punit_len,
                                 pl_off=lmin, pl_len=lpl, blk_off=f.chunk_off, blk_len=f.chunk_len,
                                 pg_off=lopt, pg_len=f.sectr_len - lopt, sec_off=0, sec_len=lmin),
                       mpos=0, timings_ns=dict(trdt=g.timings_ns["trdt"], trdm=g.timings_ns["trdm"],
                                               tprt=g.timings_ns["twrt"], tprm=g.timings_ns["twrm"],
                                               tbet=g.timings_ns["tcrst"], tbem=g.timings_ns["tcrsm"]))
        self._chunk_mask = np.uint64(~((1 << f.chunk_off) - 1) & 0xFFFF_FFFF_FFFF_FFFF)
        self.marked: set[tuple[int, int, int]] = set()     # (ch, lun, blk) retired without a failure
        self.counters = dict(pad_sectors=0, skipped_resets=0)

    # ------------------------------------------------------------ buffers
    def buf_alloc(self, nbytes: int) -> np.ndarray:
        return self.dev20.buf_alloc(nbytes)

    def buf_free(self, arr: np.ndarray) -> None:
        self.dev20.buf_free(arr)

    def close(self) -> None:
        self.dev20.close()

    # ------------------------------------------------------------ chunks
    def _fields(self, ppa: int) -> tuple[int, int, int]:
        f = self.geo20.lbaf
        return ((ppa >> f.pugrp_off) & ((1 << f.pugrp_len) - 1), (ppa >> f.punit_off) & ((1 << f.punit_len) - 1),
                (ppa >> f.chunk_off) & ((1 << f.chunk_len) - 1))

    def chunk(self, ch: int, lun: int, blk: int):
        """(state, write pointer) of one chunk, from the chunk report."""
        from oxhost.lightnvm2 import ChunkAddr
        d = self.dev20.rprt(ChunkAddr(ch, lun, blk), 1)[0]
        return ChunkState(int(d["cs"])), int(d["wp"])

    def chunk_report(self, ch: int, lun: int) -> tuple[np.ndarray, np.ndarray]:
        """(states, write pointers) of a PU's chunks, from the chunk report."""
        from oxhost.lightnvm2 import ChunkAddr
        r = self.dev20.rprt(ChunkAddr(ch, lun, 0), self.geo.nblocks)
        return r["cs"], r["wp"].astype(np.int64)

    def pad_chunk(self, ch: int, lun: int, blk: int, count: int, oob: np.ndarray | None = None,
                  at: int | None = None) -> int:
        """Write `count` filler sectors (zeros; OOB all ones unless given) at an open chunk's
        write pointer, at most to its end. With `at`, only when the write pointer is that
        sector (a free chunk's 0 too). The sectors written (none on read-only media)."""
        state, wp = self.chunk(ch, lun, blk)
        if not (state == ChunkState.OPEN or (at is not None and state == ChunkState.FREE)):
            return 0
        if at is not None and wp != at:
            return 0
        g = self.geo20
        count = min(count, g.nsectr - wp)
        count -= count % g.ws_min
        if count <= 0:
            return 0
        lbas = self.dev20.chunk_lbas(ch, lun, blk, np.arange(wp, wp + count))
        meta = np.full(count * g.nbytes_oob, _FILLER_OOB, np.uint8) if oob is None else np.tile(oob, count)
        try:
            self.dev20.write(lbas, np.zeros(count * g.nbytes, np.uint8), meta=meta)
        except NvmError as e:
            if (e.statuses == _PROTECTED).any():
                log.warning("pblk: chunk %d/%d/%d cannot be padded: the media is read-only", ch, lun, blk)
                return 0
        self.counters["pad_sectors"] += count
        return count

    def _reset(self, keys: list) -> np.ndarray:
        """Reset chunks (ch, lun, blk): free ones are skipped, open ones padded to the end
        first. Bool per chunk: it failed (offline)."""
        failed = np.zeros(len(keys), dtype=bool)
        todo = []
        for i, (ch, lun, blk) in enumerate(keys):
            state, _ = self.chunk(ch, lun, blk)
            if state == ChunkState.FREE:
                self.counters["skipped_resets"] += 1
                continue
            if state == ChunkState.OFFLINE:
                failed[i] = True
                continue
            if state == ChunkState.OPEN:
                self.pad_chunk(ch, lun, blk, self.geo20.nsectr)
            todo.append(i)
        if todo:
            lbas = np.array([self.dev20.chunk_lbas(*keys[i]) for i in todo], dtype=np.uint64)
            try:
                self.dev20.erase(lbas)
            except NvmError as e:
                if (e.statuses == _PROTECTED).any():
                    raise _as_12(e, "erase") from None
                failed[np.array(todo)[e.mask]] = True
        return failed

    # ------------------------------------------------------------ the 1.2 calls pblk makes
    def ppa_io(self, opcode, ppas, pmode=None, data=None, meta=None, out=None, with_meta=False):
        ppas = np.asarray(ppas, dtype=np.uint64).reshape(-1)
        if opcode == NvmOpc.PH_ERASE:
            chunks = ppas & self._chunk_mask
            uniq, inv = np.unique(chunks, return_inverse=True)
            failed = self._reset([self._fields(int(c)) for c in uniq])
            if failed.any():
                st = np.where(failed[inv], _FAIL_WRITE, 0).astype(np.uint16)
                raise NvmError(st, f"erase of {ppas.size} address(es)")
            return None
        try:
            if opcode == NvmOpc.PH_WRITE:
                self.dev20.write(ppas, data, meta=meta)
                return None
            return self.dev20.read(ppas, out=out, with_meta=with_meta)
        except NvmError as e:
            raise _as_12(e, "write" if opcode == NvmOpc.PH_WRITE else "read") from None

    def bbt_get(self, addr) -> BbTable:
        """A LUN's table from its chunks: an offline chunk (or one retired this session) is
        grown bad on every plane."""
        from oxhost.lightnvm2 import ChunkAddr
        g = self.geo
        r = self.dev20.rprt(ChunkAddr(addr.ch, addr.lun, 0), g.nblocks)
        bad = r["cs"] == ChunkState.OFFLINE
        for ch, lun, blk in self.marked:
            if (ch, lun) == (addr.ch, addr.lun):
                bad[blk] = True
        blks = np.repeat(np.where(bad, int(BlockState.GRWN_BAD), int(BlockState.FREE)), g.nplanes).astype(np.uint8)
        return BbTable(addr, blks, g.nplanes, 0, int(bad.sum()), 0, 0)

    def bbt_mark(self, addrs, state: int) -> None:
        """Retire chunks (grown bad): closed (padded if open) and reset, so the device takes
        one whose programs failed offline for good; any other is retired for the session."""
        if int(state) not in (BlockState.GRWN_BAD, BlockState.BAD):
            raise LightnvmError(f"a 2.0 device keeps no bad block table: cannot mark state {int(state)}")
        keys = sorted({(a.ch, a.lun, a.blk) for a in addrs})
        self._reset(keys)
        for k in keys:
            if self.chunk(*k)[0] != ChunkState.OFFLINE:
                self.marked.add(k)


def _as_12(e: NvmError, what: str) -> NvmError:
    """The 2.0 statuses as pblk knows them from 1.2 (one per address)."""
    st = e.statuses.astype(np.uint16, copy=True)
    if (st == _PROTECTED).any():
        st[st != 0] = _PROTECTED
    elif what in ("write", "pad"):
        st[st != 0] = _FAIL_WRITE
    else:
        unwritten = st == _UNWRITTEN
        st[(st != 0) & ~unwritten] = _FAIL_ECC
        st[unwritten] = _EMPTY
    return NvmError(st, f"{what} of {st.size} address(es)", data=e.data, meta=e.meta)
