"""TRIM records: how a discard survives a restart (SPEC 9, "discards are durable").

A discard unmaps its LBAs at once and queues a record (slba, nlb) for the range's mapped
runs. Before any later user write enters the write buffer (and at every flush) the queued
records go into the buffer as one sector of kind TRIM, so the log holds them exactly where
the discard was issued: after the data it removes, before any data written later. The
line's LBA list marks such a sector ADDR_TRIM, and recovery, replaying a line in order,
applies the records between the data before and after them.

A TRIM sector (one 4 KiB sector, little-endian):

    0   u32 magic "trim"       4   u32 record count     8   u32 CRC32C of the records
    12  u32 reserved           16  records: (u64 slba, u64 nlb), at most 255

GC keeps a TRIM sector's records only while they still matter: LBAs that are unmapped now
and still have an older copy in some other line in use. Rewriting such a record later in
the log is harmless (the LBA is unmapped now, so every copy of it is older), and a record
whose LBA has been written again since must go (it would unmap the newer data).
"""
import crc32c
import numpy as np

from .metadata import MetaError

TRIM_MAGIC = int.from_bytes(b"trim", "little")
TRIM_HEADER = np.dtype([("magic", "<u4"), ("count", "<u4"), ("crc", "<u4"), ("rsvd", "<u4")])
TRIM_RECORD = np.dtype([("slba", "<u8"), ("nlb", "<u8")])
assert TRIM_HEADER.itemsize == 16 and TRIM_RECORD.itemsize == 16


def records_per_sector(sector_nbytes: int = 4096) -> int:
    return (sector_nbytes - TRIM_HEADER.itemsize) // TRIM_RECORD.itemsize


def runs(mask: np.ndarray, base: int = 0) -> np.ndarray:
    """(k, 2) int64 (start, length) of the runs of True in mask, starts offset by base."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.empty((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate(([0], m.view(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return np.stack([starts + base, ends - starts], axis=1).astype(np.int64)


def pack(records: np.ndarray, sector_nbytes: int = 4096) -> np.ndarray:
    """(n, sector_nbytes) uint8: the records in as few TRIM sectors as they need (n >= 1
    only when there are records)."""
    rec = np.asarray(records, dtype=np.int64).reshape(-1, 2)
    per = records_per_sector(sector_nbytes)
    n = -(-rec.shape[0] // per)
    out = np.zeros((n, sector_nbytes), dtype=np.uint8)
    for i in range(n):
        chunk = rec[i * per:(i + 1) * per]
        body = np.empty(chunk.shape[0], dtype=TRIM_RECORD)
        body["slba"], body["nlb"] = chunk[:, 0], chunk[:, 1]
        raw = body.view(np.uint8)
        h = out[i, :TRIM_HEADER.itemsize].view(TRIM_HEADER)
        h["magic"], h["count"], h["crc"] = TRIM_MAGIC, chunk.shape[0], crc32c.crc32c(raw.tobytes())
        out[i, TRIM_HEADER.itemsize:TRIM_HEADER.itemsize + raw.size] = raw
    return out


def unpack(sector: np.ndarray) -> np.ndarray:
    """(k, 2) int64 records of one TRIM sector; MetaError if it is not one."""
    buf = np.ascontiguousarray(sector).reshape(-1).view(np.uint8)
    h = buf[:TRIM_HEADER.itemsize].view(TRIM_HEADER)[0]
    if int(h["magic"]) != TRIM_MAGIC:
        raise MetaError("TRIM sector: no magic")
    k = int(h["count"])
    if k > records_per_sector(buf.size):
        raise MetaError(f"TRIM sector: {k} records do not fit")
    raw = buf[TRIM_HEADER.itemsize:TRIM_HEADER.itemsize + k * TRIM_RECORD.itemsize]
    if crc32c.crc32c(raw.tobytes()) != int(h["crc"]):
        raise MetaError("TRIM sector: CRC mismatch")
    body = raw.view(TRIM_RECORD)
    return np.stack([body["slba"].astype(np.int64), body["nlb"].astype(np.int64)], axis=1)


def covered(records: np.ndarray, nsectors: int) -> np.ndarray:
    """Bool per LBA: some record covers it (records clipped to the volume)."""
    mark = np.zeros(nsectors + 1, dtype=np.int64)
    rec = np.asarray(records, dtype=np.int64).reshape(-1, 2)
    s = np.clip(rec[:, 0], 0, nsectors)
    e = np.clip(rec[:, 0] + rec[:, 1], 0, nsectors)
    ok = e > s
    np.add.at(mark, s[ok], 1)
    np.add.at(mark, e[ok], -1)
    return np.cumsum(mark[:nsectors]) > 0


class PendingTrims:
    """Records of discards not yet in the write buffer; consecutive ranges merge."""

    __slots__ = ("per_sector", "recs")

    def __init__(self, sector_nbytes: int = 4096):
        self.per_sector = records_per_sector(sector_nbytes)
        self.recs: list[list[int]] = []

    def __bool__(self) -> bool:
        return bool(self.recs)

    def __len__(self) -> int:
        return len(self.recs)

    def add(self, records: np.ndarray) -> None:
        for s, n in np.asarray(records, dtype=np.int64).reshape(-1, 2).tolist():
            last = self.recs[-1] if self.recs else None
            if last is not None and last[0] + last[1] == s:
                last[1] += n
            else:
                self.recs.append([s, n])

    @property
    def full(self) -> bool:
        return len(self.recs) >= self.per_sector

    def take(self) -> np.ndarray:
        rec = np.array(self.recs, dtype=np.int64).reshape(-1, 2)
        self.recs = []
        return rec
