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
             "pad_sectors", "meta_sectors", "erases", "checkpoints", "gc_runs", "trimmed_sectors")
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
    """Writes checkpoints and the trim journal (SPEC 6), and owns what decides when: the
    deallocations not yet journaled, the units since the last checkpoint, the dirty flag.

    Collaborators: blocks (the metadata stream's blocks, the block table, erases), the
    mapping (the durable L2P), the FTL's counters, the sequence counter
    and `program_units`, the FTL's one way to program units on media.
    """

    def __init__(self, addr, prov, blocks, mapping, counters: dict, seq, program_units, ckpt_seq: int = 0):
        self.addr = addr
        self.prov = prov
        self.blocks = blocks
        self.map = mapping
        self.counters = counters
        self.seq = seq
        self.program_units = program_units
        self.unit_nbytes = addr.unit_nbytes
        self.trims_per_unit = addr.unit_nbytes // TRIM_RECORD.itemsize
        self._no_lbas = np.full((1, addr.unit_secs), -1, dtype=np.int64)
        self.pending_trims: list[tuple[int, int, int]] = []
        self.held: list[int] = []       # emptied data blocks waiting for the trim journal
        self.ckpt_seq = ckpt_seq        # the newest checkpoint on media
        self.dirty = False
        self.due = False
        self.units_since = 0
        self.meta_units_since = 0

    # ------------------------------------------------------------ what happened
    def note_write(self) -> None:
        """The host wrote: the map changed."""
        self.dirty = True

    def note_units(self, n: int) -> None:
        """n data units (user or GC) reached media."""
        self.units_since += n
        self.dirty = True

    def note_trim(self, slba: int, nlb: int) -> None:
        """LBAs [slba, slba + nlb) were deallocated: a record for the journal."""
        self.pending_trims.append((self.seq.take(), slba, nlb))
        self.dirty = True
        if len(self.pending_trims) >= self.trims_per_unit:
            self.write_trims()

    @property
    def wanted(self) -> bool:
        """A periodic checkpoint is due."""
        return self.due or self.units_since >= self.prov.ckpt_every

    def postpone(self) -> None:
        """No room for the periodic checkpoint now: try again a block's worth later."""
        self.due = False
        self.units_since = max(0, self.prov.ckpt_every - self.addr.npages)

    def release_data_block(self, b: int) -> None:
        """Erase (or retire) a data block with nothing valid left -- once the pending
        deallocations are journaled. Erased before, its stale copies would be gone while
        the trim that made them stale is not durable, and recovery could map an LBA to an
        older copy left in another block. If the journal cannot be written now, the block
        waits (VICTIM, not a GC candidate) until it is."""
        if self.pending_trims:
            try:
                self.write_trims()
            except CommandError as e:
                ch, lun, blk = self.addr.chlunblk(b)
                log.warning("AppNVM: trim journal not written (%s); block ch %d lun %d blk %d "
                            "is kept until it is", e, ch, lun, blk)
                self.blocks.make_victim(b)
                self.held.append(b)
                return
        self.blocks.release(b)

    def _journal_durable(self) -> None:
        self.pending_trims.clear()
        held, self.held = self.held, []
        for b in held:
            self.blocks.release(b)

    # ------------------------------------------------------------ writing
    def payload(self, seq: int, clean: bool) -> np.ndarray:
        addr = self.addr
        blocks = self.blocks
        nlbas = self.map.nlbas
        l2p = self.map.durable_l2p().astype("<u4")
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
        h = CkptHeader(magic=CKPT_MAGIC, version=FORMAT_VERSION, clean=int(clean), rr=blocks.rr,
                       nlbas=nlbas, seq=seq, l2p_off=l2p_off, l2p_nbytes=l2p.nbytes,
                       blk_off=blk_off, blk_nbytes=table.nbytes,
                       **{f: getattr(geo, f) for f in _GEO},
                       **{k: self.counters[k] for k in _COUNTERS})
        h.payload_crc = crc32c.crc32c(buf[l2p_off:end])
        h.header_crc = _header_crc(h)
        hb = bytes(h)
        buf[:len(hb)] = np.frombuffer(hb, dtype=np.uint8)
        return buf

    def write(self, clean: bool = False) -> None:
        """Write a checkpoint of the current state; release the metadata it supersedes."""
        seq = self.seq.next
        self.counters["checkpoints"] += 1
        buf = self.payload(seq, clean)
        ub = self.unit_nbytes
        nparts = buf.size // ub
        lbas = np.full((nparts, self.addr.unit_secs), -1, dtype=np.int64)
        placed = self.program_units(Stream.META, buf, lbas, kind=UnitKind.CKPT, ckpt=seq,
                                    parts=np.arange(nparts), count=nparts)
        if len(placed) < nparts:
            raise CommandError(Status.CAP_EXCEEDED, "AppNVM: no free block for a checkpoint")
        first = placed[0][0]
        self.counters["meta_sectors"] += nparts * self.addr.unit_secs
        for b in self.blocks.retire_meta_before(first):
            self.blocks.release(b)
        self._journal_durable()
        self.ckpt_seq = seq
        self.units_since = 0
        self.meta_units_since = 0
        self.due = False
        self.dirty = False
        log.debug("AppNVM: checkpoint %d written (%d units, clean=%s)", seq, nparts, clean)

    def write_trims(self) -> None:
        """Journal the pending deallocations (each record keeps the seq it was issued at)."""
        if not self.pending_trims:
            return
        recs = np.array(self.pending_trims, dtype=TRIM_RECORD)
        per = self.trims_per_unit
        for s in range(0, recs.size, per):
            chunk = recs[s:s + per]
            buf = np.zeros(self.unit_nbytes, dtype=np.uint8)
            buf[:chunk.nbytes] = chunk.view(np.uint8)
            if not self.program_units(Stream.META, buf, self._no_lbas, kind=UnitKind.TRIM, count=chunk.size):
                raise CommandError(Status.CAP_EXCEEDED, "AppNVM: no free block for the trim journal")
            self.meta_units_since += 1
            self.counters["meta_sectors"] += self.addr.unit_secs
        self._journal_durable()
        if self.meta_units_since >= self.prov.meta_units_max:
            self.due = True
