"""Map checkpoints and the trim journal of the AppNVM FTL, written to media in the
metadata stream (SPEC 6).

A checkpoint is the durable L2P (buffered sectors replaced by their durable copies) and
the block table, behind a CkptHeader, cut into units tagged CKPT in the OOB. It is
written periodically, at shutdown/reset and after a recovery; once complete, older
metadata blocks are released. Deallocations since the last checkpoint are journaled as
TRIM units (on FLUSH, before a data block is erased, and when many are pending), so a
power cut cannot resurrect deallocated data.
"""
import ctypes
import logging

import crc32c
import numpy as np

from ...wire import Status
from ..errors import CommandError
from .layout import (
    BLOCK_ENTRY,
    CKPT_HEADER_NBYTES,
    CKPT_MAGIC,
    FORMAT_VERSION,
    TRIM_RECORD,
    CkptHeader,
    Stream,
    UnitKind,
)

log = logging.getLogger(__name__)

_COUNTERS = ("host_sectors_written", "host_sectors_read", "user_sectors", "gc_sectors",
             "pad_sectors", "meta_sectors", "erases", "checkpoints")
_GEO = ("nchannels", "nluns", "nblocks", "npages", "nplanes", "nsectors", "sector_nbytes")


class CheckpointError(Exception):
    """A checkpoint read back from media is incomplete, corrupt or of another device."""


class Checkpoint:
    """A checkpoint parsed from media."""

    def __init__(self, header: CkptHeader, l2p: np.ndarray, table: np.ndarray):
        self.header = header
        self.seq = int(header.seq)
        self.nlbas = int(header.nlbas)
        self.clean = bool(header.clean)
        self.l2p = l2p
        self.table = table

    def counters(self) -> dict:
        return {k: int(getattr(self.header, k)) for k in _COUNTERS}


def _header_crc(h: CkptHeader) -> int:
    return crc32c.crc32c(bytes(h)[:CkptHeader.header_crc.offset])


def parse(payload: np.ndarray, addr) -> Checkpoint:
    """Check and decode a checkpoint payload (all its units' data, in part order)."""
    raw = payload.tobytes()
    if len(raw) < CKPT_HEADER_NBYTES:
        raise CheckpointError("checkpoint shorter than its header")
    h = CkptHeader.from_buffer_copy(raw[:ctypes.sizeof(CkptHeader)])
    if h.magic != CKPT_MAGIC or h.version != FORMAT_VERSION or h.header_crc != _header_crc(h):
        raise CheckpointError("checkpoint header is corrupt or of another version")
    geo = addr.geo
    if tuple(getattr(h, f) for f in _GEO) != tuple(getattr(geo, f) for f in _GEO):
        raise CheckpointError("checkpoint belongs to another geometry")
    end = h.blk_off + h.blk_nbytes
    if (h.l2p_off != CKPT_HEADER_NBYTES or h.l2p_nbytes != 4 * h.nlbas or end > len(raw)
            or h.blk_nbytes != BLOCK_ENTRY.itemsize * addr.total_blocks):
        raise CheckpointError("checkpoint layout does not match its header")
    if crc32c.crc32c(raw[CKPT_HEADER_NBYTES:end]) != h.payload_crc:
        raise CheckpointError("checkpoint payload CRC mismatch")
    l2p = np.frombuffer(raw, dtype="<u4", count=h.nlbas, offset=h.l2p_off).astype(np.uint32)
    table = np.frombuffer(raw, dtype=BLOCK_ENTRY, count=addr.total_blocks, offset=h.blk_off).copy()
    return Checkpoint(h, l2p, table)


class Checkpointer:
    def __init__(self, ftl):
        self.ftl = ftl
        addr = ftl.addr
        self.unit_nbytes = addr.unit_nbytes
        self.trims_per_unit = addr.unit_nbytes // TRIM_RECORD.itemsize
        self._no_lbas = np.full((1, addr.unit_secs), -1, dtype=np.int64)

    def payload(self, seq: int, clean: bool) -> np.ndarray:
        ftl = self.ftl
        addr = ftl.addr
        blocks = ftl.blocks
        nlbas = ftl.map.nlbas
        l2p = ftl.wbuf.durable(ftl.map.l2p).astype("<u4")
        table = np.zeros(addr.total_blocks, dtype=BLOCK_ENTRY)
        table["state"] = blocks.state
        table["stream"] = blocks.stream
        table["wp"] = blocks.wp
        table["epoch"] = blocks.epoch
        l2p_off = CKPT_HEADER_NBYTES
        blk_off = l2p_off + l2p.nbytes
        end = blk_off + table.nbytes
        total = -(-end // self.unit_nbytes) * self.unit_nbytes
        buf = np.zeros(total, dtype=np.uint8)
        buf[l2p_off:blk_off] = l2p.view(np.uint8)
        buf[blk_off:end] = table.view(np.uint8)
        geo = addr.geo
        h = CkptHeader(magic=CKPT_MAGIC, version=FORMAT_VERSION, clean=int(clean), rr=ftl.rr,
                       nlbas=nlbas, seq=seq, l2p_off=l2p_off, l2p_nbytes=l2p.nbytes,
                       blk_off=blk_off, blk_nbytes=table.nbytes,
                       **{f: getattr(geo, f) for f in _GEO},
                       **{k: ftl.counters[k] for k in _COUNTERS})
        h.payload_crc = crc32c.crc32c(buf[l2p_off:end])
        h.header_crc = _header_crc(h)
        hb = bytes(h)
        buf[:len(hb)] = np.frombuffer(hb, dtype=np.uint8)
        return buf

    def write(self, clean: bool = False) -> None:
        """Write a checkpoint of the current state; release the metadata it supersedes."""
        ftl = self.ftl
        seq = ftl.seq
        ftl.counters["checkpoints"] += 1
        buf = self.payload(seq, clean)
        ub = self.unit_nbytes
        nparts = buf.size // ub
        lbas = np.full((nparts, ftl.addr.unit_secs), -1, dtype=np.int64)
        placed = ftl.program_units(Stream.META, buf, lbas, kind=UnitKind.CKPT, ckpt=seq,
                                   parts=np.arange(nparts), count=nparts)
        if len(placed) < nparts:
            raise CommandError(Status.CAP_EXCEEDED, "AppNVM: no free block for a checkpoint")
        first = placed[0][0]
        ftl.counters["meta_sectors"] += nparts * ftl.addr.unit_secs
        keep = ftl.meta_blocks.index(first)
        old, ftl.meta_blocks = ftl.meta_blocks[:keep], ftl.meta_blocks[keep:]
        for b in old:
            ftl.blocks.release(b)
        ftl.pending_trims.clear()
        ftl.ckpt_seq = seq
        ftl.units_since_ckpt = 0
        ftl.meta_units_since_ckpt = 0
        ftl.ckpt_due = False
        ftl.dirty = False
        log.debug("AppNVM: checkpoint %d written (%d units, clean=%s)", seq, nparts, clean)

    def write_trims(self) -> None:
        """Journal the pending deallocations (each record keeps the seq it was issued at)."""
        ftl = self.ftl
        if not ftl.pending_trims:
            return
        recs = np.array(ftl.pending_trims, dtype=TRIM_RECORD)
        per = self.trims_per_unit
        for s in range(0, recs.size, per):
            chunk = recs[s:s + per]
            buf = np.zeros(self.unit_nbytes, dtype=np.uint8)
            buf[:chunk.nbytes] = chunk.view(np.uint8)
            if not ftl.program_units(Stream.META, buf, self._no_lbas, kind=UnitKind.TRIM, count=chunk.size):
                raise CommandError(Status.CAP_EXCEEDED, "AppNVM: no free block for the trim journal")
            ftl.meta_units_since_ckpt += 1
            ftl.counters["meta_sectors"] += ftl.addr.unit_secs
        ftl.pending_trims.clear()
        if ftl.meta_units_since_ckpt >= ftl.prov.meta_units_max:
            ftl.ckpt_due = True
