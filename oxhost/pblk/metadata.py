"""On-media metadata of a pblk line: smeta at its start, emeta at its end, and the 16-byte
OOB of every sector, laid out as Linux pblk lays them out (pblk.h, 4.12-4.20).

Each line begins with smeta (struct line_smeta + the bitmap of the LUNs the line uses)
and ends with emeta, whose sections start on sector boundaries like pblk's emeta_sec[]:

    [1] struct line_emeta + bad-block bitmap + struct wa_counters
    [2] LBA list: one u64 per line sector before the emeta (ADDR_EMPTY where unmapped,
        ADDR_TRIM where the sector holds TRIM records)
    [3] valid sector count of every line (u32)

Both carry CRC32C: header.crc over the header after its crc field, and the structure's
own crc over everything after that field up to the end of the metadata. Every sector's OOB
is struct pblk_sec_meta {u64 reserved; le64 lba}; the reserved word carries the line's
sequence number (bits 0-47) and the kind of write (bits 56-63), so recovery can tell this
line's sectors from stale ones of an earlier use of the block and recount user/GC/pad.
"""
import enum
from dataclasses import dataclass

import crc32c
import numpy as np

PBLK_MAGIC = 0x70626C6B                  # "pblk"
SMETA_VERSION = (0, 1)                   # SMETA_VERSION_MAJOR/MINOR
EMETA_VERSION = (0, 3)                   # EMETA_VERSION_MAJOR/MINOR (0.3: + the target's counters)
LINETYPE_DATA = 2                        # PBLK_LINETYPE_DATA
ADDR_EMPTY = -1                          # as int64; 0xFFFF_FFFF_FFFF_FFFF on media
ADDR_TRIM = -2                           # LBA list / OOB value of a TRIM sector (0x..FFFE)
ID_NONE = 0xFFFFFFFF                     # no previous / next line
SEQ_MASK = (1 << 48) - 1


class Kind(enum.IntEnum):
    """What a programmed sector holds (OOB reserved word, bits 56-63)."""
    NONE = 0
    USER = 1
    GC = 2
    PAD = 3
    META = 4
    TRIM = 5        # TRIM records of discards (trim.py), in log order with the data


# struct pblk_sec_meta: the host's 16 OOB bytes of each sector
OOB = np.dtype([("reserved", "<u8"), ("lba", "<u8")])
assert OOB.itemsize == 16

# struct line_header
LINE_HEADER = np.dtype([("crc", "<u4"), ("identifier", "<u4"), ("uuid", "u1", 16), ("type", "<u2"),
                        ("version_major", "u1"), ("version_minor", "u1"), ("id", "<u4")])
assert LINE_HEADER.itemsize == 32

# struct line_smeta (lun_bitmap[] follows at offset 64, u64 words)
LINE_SMETA = np.dtype({"names": ["header", "crc", "prev_id", "seq_nr", "window_wr_lun", "rsvd"],
                       "formats": [LINE_HEADER, "<u4", "<u4", "<u8", "<u4", ("<u4", 2)],
                       "offsets": [0, 32, 36, 40, 48, 52], "itemsize": 64})

# struct line_emeta (bb_bitmap[] follows at offset 72, then struct wa_counters)
LINE_EMETA = np.dtype({"names": ["header", "crc", "prev_id", "seq_nr", "window_wr_lun", "next_id",
                                 "nr_lbas", "nr_valid_lbas"],
                       "formats": [LINE_HEADER, "<u4", "<u4", "<u8", "<u4", "<u4", "<u8", "<u8"],
                       "offsets": [0, 32, 36, 40, 48, 52, 56, 64], "itemsize": 72})

# struct wa_counters
WA_COUNTERS = np.dtype([("user", "<u8"), ("gc", "<u8"), ("pad", "<u8")])
assert WA_COUNTERS.itemsize == 24

# The target's counters, all of them, in this order: emeta section [1] carries them after
# wa_counters (a u64 count, then the values), so they persist as the WA counters do.
COUNTERS = ("user", "gc", "pad", "meta", "trim_sectors", "gc_trim_sectors", "trim_records",
            "gc_runs", "gc_moved", "lines_opened", "lines_closed", "lines_freed", "erases",
            "erase_failed", "write_failed", "requeued", "read_retries", "read_failed",
            "read_failed_gc", "read_empty", "grown_bad_marked", "user_read_sectors",
            "media_read_sectors", "discarded_sectors", "flushes", "ring_reads")
COUNTERS_MAX = 64                        # room kept in emeta, so more can be added later

_CRC_FROM = 36        # both structures: CRC covers everything after their own crc field


class MetaError(Exception):
    """A metadata buffer is not valid pblk metadata (magic, version, CRC or line id)."""


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class MetaSizes:
    """pblk_line_meta: how many sectors smeta and emeta take for this target.

    Both are whole write units; emeta grows a unit at a time until its sections fit,
    as pblk_lines_init does (`add_emeta_page`).
    """
    nluns: int
    nlines: int
    unit_secs: int
    sec_per_line: int
    sector_nbytes: int = 4096

    @property
    def bitmap_words(self) -> int:
        return _ceil(self.nluns, 64)

    @property
    def smeta_len(self) -> int:
        return LINE_SMETA.itemsize + 8 * self.bitmap_words

    @property
    def smeta_units(self) -> int:
        return _ceil(self.smeta_len, self.unit_secs * self.sector_nbytes)

    @property
    def smeta_secs(self) -> int:
        return self.smeta_units * self.unit_secs

    def _sections(self, emeta_secs: int) -> tuple[int, int, int]:
        s = self.sector_nbytes
        head = LINE_EMETA.itemsize + 8 * self.bitmap_words + WA_COUNTERS.itemsize + 8 * (1 + COUNTERS_MAX)
        return (_ceil(head, s), _ceil((self.sec_per_line - emeta_secs) * 8, s), _ceil(self.nlines * 4, s))

    @property
    def emeta_units(self) -> int:
        units = 1
        while sum(self._sections(units * self.unit_secs)) > units * self.unit_secs:
            units += 1
        return units

    @property
    def emeta_secs(self) -> int:
        return self.emeta_units * self.unit_secs

    @property
    def emeta_sections(self) -> tuple[int, int, int]:
        """Sectors of emeta sections [1], [2], [3] (pblk's emeta_sec[1..3])."""
        return self._sections(self.emeta_secs)

    @property
    def nr_lba_slots(self) -> int:
        """Entries of the LBA list: every line sector that can precede the emeta."""
        return self.sec_per_line - self.emeta_secs


@dataclass
class Smeta:
    line_id: int
    seq: int
    prev_id: int
    uuid: bytes
    luns: np.ndarray          # bool per target LUN: the line has a block there


@dataclass
class Emeta:
    line_id: int
    seq: int
    prev_id: int
    next_id: int
    uuid: bytes
    nr_lbas: int
    nr_valid_lbas: int
    bad: np.ndarray           # bool per target LUN: bad or failed block in this line
    wa: tuple                 # (user, gc, pad) sectors written by the target so far
    lbas: np.ndarray          # int64 per line sector before the emeta; -1 = empty
    vsc: np.ndarray           # uint32 valid sectors of every line when this one closed
    counters: dict            # the target's counters (COUNTERS) when this line closed


# ---------------------------------------------------------------- helpers
def _bits_to_words(bits: np.ndarray, nwords: int) -> np.ndarray:
    packed = np.packbits(np.asarray(bits, dtype=bool), bitorder="little")
    out = np.zeros(nwords * 8, dtype=np.uint8)
    out[:packed.size] = packed
    return out.view("<u8")


def _words_to_bits(words: np.ndarray, nbits: int) -> np.ndarray:
    return np.unpackbits(np.ascontiguousarray(words).view(np.uint8), bitorder="little")[:nbits].astype(bool)


def _header(line_id: int, uuid: bytes, version: tuple) -> np.ndarray:
    h = np.zeros((), dtype=LINE_HEADER)
    h["identifier"] = PBLK_MAGIC
    h["uuid"] = np.frombuffer(uuid.ljust(16, b"\0")[:16], np.uint8)
    h["type"] = LINETYPE_DATA
    h["version_major"], h["version_minor"] = version
    h["id"] = line_id
    return h


def _seal(buf: np.ndarray, length: int) -> None:
    """Fill in header.crc and the structure crc of a metadata buffer (in place)."""
    buf[32:36] = np.frombuffer(crc32c.crc32c(buf[_CRC_FROM:length].tobytes()).to_bytes(4, "little"), np.uint8)
    buf[0:4] = np.frombuffer(crc32c.crc32c(buf[4:32].tobytes()).to_bytes(4, "little"), np.uint8)


def _check(buf: np.ndarray, length: int, what: str, version: tuple, line_id: int | None) -> np.ndarray:
    h = buf[:32].view(LINE_HEADER)[0]
    if int(h["identifier"]) != PBLK_MAGIC:
        raise MetaError(f"{what}: no pblk magic")
    if int(h["crc"]) != crc32c.crc32c(buf[4:32].tobytes()):
        raise MetaError(f"{what}: header CRC mismatch")
    if int(buf[32:36].view("<u4")[0]) != crc32c.crc32c(buf[_CRC_FROM:length].tobytes()):
        raise MetaError(f"{what}: CRC mismatch")
    if int(h["version_major"]) != version[0]:
        raise MetaError(f"{what}: version {int(h['version_major'])}.{int(h['version_minor'])} not supported")
    if line_id is not None and int(h["id"]) != line_id:
        raise MetaError(f"{what}: written for line {int(h['id'])}, found on line {line_id}")
    return h


# ---------------------------------------------------------------- smeta
def pack_smeta(sz: MetaSizes, line_id: int, seq: int, prev_id: int, uuid: bytes, luns) -> np.ndarray:
    buf = np.zeros(sz.smeta_secs * sz.sector_nbytes, dtype=np.uint8)
    s = buf[:LINE_SMETA.itemsize].view(LINE_SMETA)
    s["header"] = _header(line_id, uuid, SMETA_VERSION)
    s["prev_id"] = prev_id
    s["seq_nr"] = seq
    s["window_wr_lun"] = int(np.count_nonzero(luns))
    end = LINE_SMETA.itemsize + 8 * sz.bitmap_words
    buf[LINE_SMETA.itemsize:end] = _bits_to_words(luns, sz.bitmap_words).view(np.uint8)
    _seal(buf, sz.smeta_len)
    return buf


def unpack_smeta(sz: MetaSizes, buf: np.ndarray, line_id: int | None = None) -> Smeta:
    buf = np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    h = _check(buf, sz.smeta_len, "smeta", SMETA_VERSION, line_id)
    s = buf[:LINE_SMETA.itemsize].view(LINE_SMETA)[0]
    words = buf[LINE_SMETA.itemsize:LINE_SMETA.itemsize + 8 * sz.bitmap_words].view("<u8")
    return Smeta(line_id=int(h["id"]), seq=int(s["seq_nr"]), prev_id=int(s["prev_id"]),
                 uuid=bytes(h["uuid"]), luns=_words_to_bits(words, sz.nluns))


# ---------------------------------------------------------------- emeta
def pack_emeta(sz: MetaSizes, line_id: int, seq: int, prev_id: int, next_id: int, uuid: bytes,
               bad, wa: tuple, lbas: np.ndarray, vsc: np.ndarray, counters: dict | None = None) -> np.ndarray:
    secb = sz.sector_nbytes
    e1, e2, e3 = sz.emeta_sections
    buf = np.zeros(sz.emeta_secs * secb, dtype=np.uint8)
    e = buf[:LINE_EMETA.itemsize].view(LINE_EMETA)
    e["header"] = _header(line_id, uuid, EMETA_VERSION)
    e["prev_id"] = prev_id
    e["seq_nr"] = seq
    e["window_wr_lun"] = int(np.count_nonzero(~np.asarray(bad, dtype=bool)))
    e["next_id"] = next_id
    lbas = np.asarray(lbas, dtype=np.int64)
    e["nr_lbas"] = sz.nr_lba_slots
    e["nr_valid_lbas"] = int(np.count_nonzero(lbas >= 0))
    off = LINE_EMETA.itemsize
    buf[off:off + 8 * sz.bitmap_words] = _bits_to_words(bad, sz.bitmap_words).view(np.uint8)
    off += 8 * sz.bitmap_words
    buf[off:off + WA_COUNTERS.itemsize] = np.array([wa], dtype=WA_COUNTERS).view(np.uint8)
    off += WA_COUNTERS.itemsize
    vals = [int((counters or {}).get(k, 0)) for k in COUNTERS]
    buf[off:off + 8 * (1 + len(vals))] = np.array([len(vals), *vals], dtype="<u8").view(np.uint8)
    lo = e1 * secb
    buf[lo:lo + 8 * sz.nr_lba_slots] = lbas[:sz.nr_lba_slots].astype("<i8").view(np.uint8)
    vo = (e1 + e2) * secb
    buf[vo:vo + 4 * sz.nlines] = np.asarray(vsc).astype("<u4").view(np.uint8)
    _seal(buf, (e1 + e2 + e3) * secb)
    return buf


def unpack_emeta(sz: MetaSizes, buf: np.ndarray, line_id: int | None = None) -> Emeta:
    buf = np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    secb = sz.sector_nbytes
    e1, e2, e3 = sz.emeta_sections
    h = _check(buf, (e1 + e2 + e3) * secb, "emeta", EMETA_VERSION, line_id)
    e = buf[:LINE_EMETA.itemsize].view(LINE_EMETA)[0]
    off = LINE_EMETA.itemsize
    bad = _words_to_bits(buf[off:off + 8 * sz.bitmap_words].view("<u8"), sz.nluns)
    off += 8 * sz.bitmap_words
    wa = buf[off:off + WA_COUNTERS.itemsize].view(WA_COUNTERS)[0]
    off += WA_COUNTERS.itemsize
    n = min(int(buf[off:off + 8].view("<u8")[0]), COUNTERS_MAX, len(COUNTERS))
    vals = buf[off + 8:off + 8 + 8 * n].view("<u8")
    counters = {k: int(v) for k, v in zip(COUNTERS, vals)}
    lo = e1 * secb
    vo = (e1 + e2) * secb
    return Emeta(line_id=int(h["id"]), seq=int(e["seq_nr"]), prev_id=int(e["prev_id"]),
                 next_id=int(e["next_id"]), uuid=bytes(h["uuid"]), nr_lbas=int(e["nr_lbas"]),
                 nr_valid_lbas=int(e["nr_valid_lbas"]), bad=bad,
                 wa=(int(wa["user"]), int(wa["gc"]), int(wa["pad"])),
                 lbas=buf[lo:lo + 8 * sz.nr_lba_slots].view("<i8").copy(),
                 vsc=buf[vo:vo + 4 * sz.nlines].view("<u4").copy(), counters=counters)


# ---------------------------------------------------------------- OOB
def pack_oob(seq: int, kinds: np.ndarray | int, lbas: np.ndarray | int, n: int | None = None) -> np.ndarray:
    """The OOB of n sectors as a (n, 2) uint64 array (reserved, lba)."""
    lbas = np.asarray(lbas, dtype=np.int64)
    if n is None:
        n = lbas.size if lbas.ndim else 1
    out = np.empty((n, 2), dtype=np.uint64)
    out[:, 0] = (np.asarray(kinds, dtype=np.uint64) << np.uint64(56)) | np.uint64(seq & SEQ_MASK)
    out[:, 1] = lbas.astype(np.uint64) if lbas.ndim else np.uint64(int(lbas) & 0xFFFFFFFFFFFFFFFF)
    return out


def unpack_oob(meta: np.ndarray):
    """(seq, kind, lba) arrays from raw OOB bytes (16 per sector); lba -1 = empty."""
    m = np.ascontiguousarray(meta).reshape(-1).view(np.uint8).view(OOB)
    res = m["reserved"]
    return ((res & np.uint64(SEQ_MASK)).astype(np.int64), (res >> np.uint64(56)).astype(np.uint8),
            m["lba"].view(np.int64))
