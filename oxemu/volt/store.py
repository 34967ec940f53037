"""Where VOLT's bytes live: anonymous memory (volt>0) or a sparse disk file (volt=0).

Disk file format, version 3 (all little-endian):

    0      4 KiB header: VoltHeader below -- geometry, region offsets, how the last
           writer stopped, and the 512-byte media label (wire.ox.MediaLabel) -- with a
           CRC32C over the struct taken with crc = 0
    4 KiB  block-plane state: bbt u8[N], next_page u16[N], erase_count u32[N],
           N = channels*luns*blocks*planes, in (ch, lun, blk, pl) order
    ...    page state: u8[P], one per plane page (P = N*pages), in (ch, lun, blk, pg, pl)
           order; PageState below. A page that is not OK reads back as uncorrectable
           (ECC) until its block is erased
    ...    data: sector_nbytes per sector, in (ch, lun, blk, pg, pl, sec) order
    ...    OOB: oob_nbytes per page, in (ch, lun, blk, pg, pl) order
    ...    NVRAM: the controller's power-loss-protected memory, which a device mode uses
           for what must survive a power cut without a NAND program (the zoned mode's
           zone shape, zone records and write buffers): a 4 KiB header of the mode's own,
           then per erase block B = channels*luns*blocks: records
           u8[B][NVRAM_RECORD_NBYTES], then (4 KiB aligned) one write unit's data
           u8[B][planes*page_nbytes], then its host OOB u8[B][planes*sectors*meta_nbytes]

Regions start on 4 KiB boundaries. Version 2 is version 3 without the NVRAM region
(the header has no nvram fields): such a file is read and written as it is -- by the
modes that need no NVRAM -- and `ox format` turns it into version 3. The file is created sparse, so disk use grows with
data written. A file whose magic, version, CRC, geometry or size does not match is
refused and left untouched. The file is locked (flock) while open: one writer, or any
number of read-only openers.

Header life cycle. Opening writes nothing. The first media mutation of a power-on
(erase, program, bad block table or label change: `begin_write`) marks the header
RUNNING, counts a power cycle -- and an unsafe shutdown when the header still said
RUNNING, i.e. the last writer died -- and gives a BLANK label the device's mode. A
controller shutdown marks it CLEAN (last_stop_clean, last_stop_s); a close while the
media is still being written -- after a power cut, or a power-off without a controller
shutdown since the last mutation -- marks it UNSAFE, counted as an unsafe shutdown, as
NVMe counts them. flush() and close()
rewrite the header only when its bytes change, and only after a mutation: an open that is
refused, or that only identified or read the device, leaves the file byte-identical (the
read counters of such a session are not kept). The session's lifetime counters
(SMART data units, host commands, media errors) are added to the label's when the
header is written.
"""
import ctypes
import enum
import fcntl
import logging
import mmap
import os
import time

import crc32c
import numpy as np

from ..wire.ox import Interface, MediaLabel, MediaMode
from .errors import StoreError
from .geometry import Geometry
from .label import SESSION_COUNTERS, copy_label, new_label, set_bytes
from .populate import Populator

log = logging.getLogger(__name__)

MAGIC = b"OXVOLT\x00\x01"
HUGE_PAGE = 2 << 20
VERSION = 3
VERSIONS = (2, 3)               # what this build reads; new files are VERSION
HEADER_NBYTES = 4096
NVRAM_RECORD_NBYTES = 64        # per erase block: a device mode's own record
NVRAM_HEADER_NBYTES = 4096      # the device mode's own header at the start of the NVRAM

__all__ = ["MAGIC", "VERSION", "HEADER_NBYTES", "NVRAM_HEADER_NBYTES", "NVRAM_RECORD_NBYTES", "Nvram", "PageState",
           "StopState", "Store", "StoreError", "VoltHeader", "layout", "probe_geometry", "probe_label"]


class StopState(enum.IntEnum):
    """How the last writer of the file stopped (VoltHeader.stop)."""
    RUNNING = 0      # a writer is running, or died without stopping: an unsafe shutdown
    CLEAN = 1        # controller shutdown after the last mutation
    UNSAFE = 2       # closed while writing: a power cut, or no controller shutdown (counted)


class PageState(enum.IntEnum):
    """One byte per plane page: whether a programmed page can be read."""
    OK = 0
    PROGRAM_FAILED = 1   # the program reported a failure: the page is consumed, unreadable
    TORN = 2             # the program the power cut interrupted


_V2_FIELDS = [
    ("magic", ctypes.c_char * 8), ("version", ctypes.c_uint32), ("header_nbytes", ctypes.c_uint32),
    ("nchannels", ctypes.c_uint32), ("nluns", ctypes.c_uint32), ("nblocks", ctypes.c_uint32),
    ("npages", ctypes.c_uint32), ("nplanes", ctypes.c_uint32), ("nsectors", ctypes.c_uint32),
    ("sector_nbytes", ctypes.c_uint32), ("oob_nbytes", ctypes.c_uint32),
    ("state_off", ctypes.c_uint64), ("pstate_off", ctypes.c_uint64), ("data_off", ctypes.c_uint64),
    ("oob_off", ctypes.c_uint64), ("file_nbytes", ctypes.c_uint64),
    ("stop", ctypes.c_uint32),            # StopState
    ("rsvd", ctypes.c_uint32),
    ("label", MediaLabel),
]


class VoltHeader(ctypes.LittleEndianStructure):
    """On-disk header of a VOLT media file, version 3 (this project's own format)."""
    _pack_ = 1
    _fields_ = _V2_FIELDS + [
        ("nvram_off", ctypes.c_uint64), ("nvram_nbytes", ctypes.c_uint64),
        ("crc", ctypes.c_uint32),
    ]


class V2Header(ctypes.LittleEndianStructure):
    """The version-2 header: version 3's without the NVRAM fields."""
    _pack_ = 1
    _fields_ = _V2_FIELDS + [("crc", ctypes.c_uint32)]


assert VoltHeader.version.offset == 8 and VoltHeader.label.offset % 8 == 0
assert V2Header.label.offset == VoltHeader.label.offset and VoltHeader.nvram_off.offset % 8 == 0
assert ctypes.sizeof(VoltHeader) <= HEADER_NBYTES

_GEO_FIELDS = ("nchannels", "nluns", "nblocks", "npages", "nplanes", "nsectors",
               "sector_nbytes", "oob_nbytes")
_LAYOUT_FIELDS = ("state_off", "pstate_off", "data_off", "oob_off", "file_nbytes")
_HEADERS = {2: V2Header, 3: VoltHeader}


def _align(n: int, a: int = 4096) -> int:
    return (n + a - 1) // a * a


def _now_s() -> int:
    return int(time.time())


def nvram_shape(geo: Geometry) -> tuple[int, int, int]:
    """(erase blocks, write unit data bytes, write unit host OOB bytes) of the NVRAM region."""
    return (geo.total_luns * geo.nblocks, geo.nplanes * geo.page_nbytes,
            geo.nplanes * geo.nsectors * geo.meta_nbytes)


def layout(geo: Geometry, version: int = VERSION) -> dict:
    """Byte offsets of the regions of a file of this geometry and format version; the
    NVRAM's own offsets are relative to its start (nvram_off)."""
    n = geo.block_planes
    state_off = HEADER_NBYTES
    pstate_off = _align(state_off + n * (1 + 2 + 4))
    data_off = _align(pstate_off + geo.total_pages)
    oob_off = _align(data_off + geo.data_nbytes)
    end = _align(oob_off + geo.oob_total_nbytes)
    out = dict(state_off=state_off, pstate_off=pstate_off, data_off=data_off, oob_off=oob_off,
               file_nbytes=end, n=n)
    if version >= 3:
        blocks, unit, meta = nvram_shape(geo)
        units = _align(NVRAM_HEADER_NBYTES + blocks * NVRAM_RECORD_NBYTES)
        metas = _align(units + blocks * unit)
        nbytes = _align(metas + blocks * meta)
        out.update(nvram_off=end, nvram_nbytes=nbytes, nvram_units=units, nvram_metas=metas,
                   file_nbytes=end + nbytes)
    return out


def _header_crc(h: ctypes.Structure) -> int:
    raw = bytearray(bytes(h))
    off = type(h).crc.offset
    raw[off:off + 4] = b"\0\0\0\0"
    return crc32c.crc32c(bytes(raw))


def new_header(geo: Geometry, label: MediaLabel) -> VoltHeader:
    lay = layout(geo)
    h = VoltHeader(version=VERSION, header_nbytes=HEADER_NBYTES, stop=StopState.CLEAN, label=label,
                   nvram_off=lay["nvram_off"], nvram_nbytes=lay["nvram_nbytes"],
                   **{f: lay[f] for f in _LAYOUT_FIELDS}, **{f: getattr(geo, f) for f in _GEO_FIELDS})
    # c_char arrays stop at the first NUL: copy the whole 8-byte magic in
    ctypes.memmove(ctypes.addressof(h) + VoltHeader.magic.offset, MAGIC, len(MAGIC))
    return h


def seal(h: ctypes.Structure) -> bytes:
    h.crc = _header_crc(h)
    return bytes(h)


def _version_line(path, version: int) -> str:
    if version < VERSION:
        return (f"{path}: disk file format version {version}; this build reads version {VERSION} "
                f"(`ox format` recreates it: its data is lost, its bad block table kept)")
    return (f"{path}: disk file format version {version}; this build reads version {VERSION} "
            f"(a newer build wrote it); refusing to use it")



def peek_version(path, raw: bytes) -> int:
    """The format version of an OX disk file's first bytes; StoreError when not one."""
    if len(raw) < 12 or raw[:6] != MAGIC[:6]:
        raise StoreError(f"{path}: not an OX disk file (bad magic); refusing to use it")
    return int.from_bytes(raw[8:12], "little")


def parse_header(path, raw: bytes) -> VoltHeader | V2Header:
    """The version-3 (or version-2) header at the start of `raw`; StoreError for anything else."""
    version = peek_version(path, raw)
    if version not in VERSIONS:
        raise StoreError(_version_line(path, version))
    cls = _HEADERS[version]
    if len(raw) < ctypes.sizeof(cls):
        raise StoreError(f"{path}: disk file header is truncated; refusing to use it")
    h = cls.from_buffer_copy(raw)
    if h.crc != _header_crc(h):
        raise StoreError(f"{path}: disk file header is corrupt (CRC mismatch); refusing to use it")
    return h


def header_geometry(path, h) -> Geometry:
    try:
        return Geometry(h.nchannels, h.nluns, h.nblocks, h.npages, h.nplanes, h.nsectors,
                        sector_nbytes=h.sector_nbytes, oob_nbytes=h.oob_nbytes)
    except ValueError as e:
        raise StoreError(f"{path}: disk file records an impossible {e}; refusing to use it") from None


def _read_head(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(HEADER_NBYTES)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"{path}: cannot read disk file: {e.strerror}") from None


def probe_geometry(path: str) -> Geometry | None:
    """The geometry recorded in an existing disk file; None if there is no such file.

    Raises StoreError when the file exists but is not a valid OX disk file of this version.
    """
    raw = _read_head(path)
    if not raw:
        return None
    return header_geometry(path, parse_header(path, raw))


def probe_label(path: str) -> MediaLabel | None:
    """The media label recorded in an existing disk file, as stored (a running writer's
    session counters are added only when it flushes or stops); None if there is no such
    file. Reads without writing or locking; StoreError as probe_geometry."""
    raw = _read_head(path)
    if not raw:
        return None
    h = parse_header(path, raw)
    header_geometry(path, h)
    return copy_label(h.label)


class Nvram:
    """The NVRAM region as numpy views: `header` (the mode's own 4 KiB), then one row per
    erase block (ch, lun, blk order): `records` (64 bytes each), `units` (one write unit's
    data), `metas` (its host OOB). Writes to it are media mutations: a device mode calls
    Volt.mutating() first."""

    def __init__(self, buf: np.ndarray, geo: Geometry, lay: dict):
        blocks, unit, meta = nvram_shape(geo)
        self.header = buf[:NVRAM_HEADER_NBYTES]
        r = NVRAM_HEADER_NBYTES
        self.records = buf[r:r + blocks * NVRAM_RECORD_NBYTES].reshape(blocks, NVRAM_RECORD_NBYTES)
        u, m = lay["nvram_units"], lay["nvram_metas"]
        self.units = buf[u:u + blocks * unit].reshape(blocks, unit)
        self.metas = buf[m:m + blocks * meta].reshape(blocks, meta)


class Store:
    """Byte regions of the media as numpy views, and the header with the media label.

    `mode` and `interface` are the MediaMode and Interface of the device writing (they
    label BLANK media at the first mutation); `readonly` opens an existing file
    read-only under a shared lock.
    `counters_source`, when set, returns the session's lifetime counters (SESSION_COUNTERS
    of wire.ox.MediaLabel) to add to the label's.
    """

    def __init__(self, geo: Geometry, path: str | None = None, factory_bad=None, *,
                 readonly: bool = False, mode: MediaMode = MediaMode.BLANK,
                 interface: Interface = Interface.OCSSD_1_2):
        self.geo = geo
        self.path = path
        self.mode = MediaMode(mode)
        self.interface = Interface(interface)
        self.readonly = bool(readonly)
        self.counters_source = None
        self.writing = False          # the header says RUNNING for this session
        self._started = False         # this power-on has mutated the media
        self._fd = None
        self._base = 0                # where the layout starts in the mapping
        self._on_disk = b""
        lay = layout(geo)
        if path is None:
            if self.readonly:
                raise ValueError("volatile media cannot be opened read-only")
            self._mm = mmap.mmap(-1, lay["file_nbytes"] + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            # A block's data is 4 MiB contiguous, so 2 MiB pages still fill only as data
            # arrives, and first-touch programs fault 512x less often -- when the data
            # region starts on a 2 MiB boundary: the regions are placed so that it does
            # (else every block straddles three huge pages and a half-written block holds
            # twice its data in RSS). Not for the OOB region: 1 KiB stores scattered over
            # fresh huge pages are slower there.
            addr = ctypes.addressof(ctypes.c_char.from_buffer(self._mm))
            self._base = -(addr + lay["data_off"]) % HUGE_PAGE
            if hasattr(mmap, "MADV_HUGEPAGE"):
                self._mm.madvise(mmap.MADV_HUGEPAGE, self._base + lay["data_off"], geo.data_nbytes)
            self._hdr = new_header(geo, new_label(_now_s()))
            created = True
        else:
            created = self._open_file(path)
            lay = layout(geo, int(self._hdr.version))
        self._layout = lay
        self.version = int(self._hdr.version)
        self.label = copy_label(self._hdr.label)       # the base: lifetime up to this session
        try:
            self._stop_at_open = StopState(self._hdr.stop)
        except ValueError:            # a state this build does not know: assume the worst
            self._stop_at_open = StopState.RUNNING
        buf = np.frombuffer(self._mm, dtype=np.uint8)[self._base:self._base + lay["file_nbytes"]]
        n, s = lay["n"], lay["state_off"]
        shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        self.bbt = buf[s:s + n].reshape(shape)
        self.next_page = buf[s + n:s + 3 * n].view("<u2").reshape(shape)
        self.erase_count = buf[s + 3 * n:s + 7 * n].view("<u4").reshape(shape)
        p = lay["pstate_off"]
        self.page_state = buf[p:p + geo.total_pages].reshape(
            geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes)
        d = lay["data_off"]
        self.data = buf[d:d + geo.data_nbytes].reshape(
            geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes,
            geo.nsectors * geo.sector_nbytes)
        o = lay["oob_off"]
        self.oob = buf[o:o + geo.oob_total_nbytes].reshape(
            geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes, geo.oob_nbytes)
        self.nvram = Nvram(buf[lay["nvram_off"]:lay["nvram_off"] + lay["nvram_nbytes"]], geo, lay) \
            if "nvram_off" in lay else None
        self.created = created
        if created and factory_bad is not None:
            self.bbt[factory_bad] = 1
        self._populator = None
        if not self.readonly:
            at = ctypes.c_char.from_buffer(self._mm)
            address = ctypes.addressof(at)
            del at                         # no export may outlive the mapping's close
            self._populator = Populator(address, geo.nchannels * geo.nluns * geo.nblocks, self._block_extents)

    # ------------------------------------------------------------------ open
    def _open_file(self, path: str) -> bool:
        try:
            if self.readonly:
                fd = os.open(path, os.O_RDONLY)
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise StoreError(f"{path}: no such disk file") from None
        except OSError as e:
            raise StoreError(f"{path}: cannot open disk file: {e.strerror}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.readonly else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{path}: disk file is in use by another process") from None
        try:
            size = os.fstat(fd).st_size
            created = size == 0
            if created:
                if self.readonly:
                    raise StoreError(f"{path}: empty file, not an OX disk file; refusing to use it")
                lay = layout(self.geo)
                os.ftruncate(fd, lay["file_nbytes"])
                self._hdr = new_header(self.geo, new_label(_now_s()))
                self._on_disk = seal(self._hdr)
                os.pwrite(fd, self._on_disk, 0)
            else:
                raw = os.pread(fd, ctypes.sizeof(VoltHeader), 0)
                self._hdr = self._check_header(path, raw, size)
                lay = layout(self.geo, int(self._hdr.version))
                self._on_disk = raw[:ctypes.sizeof(self._hdr)]
            if self.readonly:
                self._mm = mmap.mmap(fd, lay["file_nbytes"], flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            else:
                self._mm = mmap.mmap(fd, lay["file_nbytes"], flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return created

    def _check_header(self, path, raw: bytes, size: int) -> VoltHeader | V2Header:
        h = parse_header(path, raw)
        lay = layout(self.geo, int(h.version))
        theirs = tuple(getattr(h, f) for f in _GEO_FIELDS)
        ours = tuple(getattr(self.geo, f) for f in _GEO_FIELDS)
        if theirs != ours:
            other = "{}ch x {}lun x {}blk x {}pg x {}pl x {}sec x {}B".format(*theirs[:7])  # may be invalid
            raise StoreError(f"{path}: disk file geometry {other} does not match "
                             f"the device's {self.geo.describe()}")
        if tuple(getattr(h, f) for f in _LAYOUT_FIELDS) != tuple(lay[f] for f in _LAYOUT_FIELDS) \
                or size < h.file_nbytes or ("nvram_off" in lay and (h.nvram_off, h.nvram_nbytes) !=
                                            (lay["nvram_off"], lay["nvram_nbytes"])):
            raise StoreError(f"{path}: disk file layout or size is wrong (truncated?); refusing to use it")
        return h

    # ------------------------------------------------------------------ the label
    def _session(self) -> dict:
        src = self.counters_source
        return src() if src is not None else {}

    def _persisted_label(self) -> MediaLabel:
        lab = copy_label(self.label)
        for k, v in self._session().items():
            if k in SESSION_COUNTERS and v:
                setattr(lab, k, getattr(lab, k) + int(v))
        return lab

    def live_label(self) -> MediaLabel:
        """The label as the device reports it: lifetime counters up to now, and an unsafe
        shutdown of the last writer counted even before this session writes."""
        lab = self._persisted_label()
        if not self._started:                  # this power-on, counted once it writes
            lab.power_cycles += 1
            if self._stop_at_open == StopState.RUNNING and not self.created:
                lab.unsafe_shutdowns += 1
                lab.last_stop_clean = 0
        return lab

    def begin_write(self) -> None:
        """The media is about to change: mark the header RUNNING (at once, so a writer that
        dies leaves it so), count the power cycle, label BLANK media with our mode."""
        if self.writing:
            return
        if self.readonly:
            raise StoreError(f"{self.path}: disk file is open read-only")
        lab = self.label
        if not self._started:
            self._started = True
            if self._stop_at_open == StopState.RUNNING and not self.created:
                lab.unsafe_shutdowns += 1            # the last writer died without stopping
                lab.last_stop_clean = 0
            lab.power_cycles += 1
        if lab.mode == MediaMode.BLANK and self.mode != MediaMode.BLANK:
            lab.mode = self.mode
            lab.interface = self.interface
            lab.labelled_s = _now_s()
        self.writing = True
        self._hdr.stop = StopState.RUNNING
        self._write_header()

    def update_label(self, **fields) -> bool:
        """Change label fields (a media mutation); False when nothing would change."""
        def apply(lab):
            for k, v in fields.items():
                if k in ("uuid", "ftl_name"):
                    set_bytes(lab, k, v)
                else:
                    setattr(lab, k, v)
        new = copy_label(self.label)
        apply(new)
        if bytes(new) == bytes(self.label):
            return False
        self.begin_write()                    # may count the power cycle and label the mode
        apply(self.label)
        if fields.get("mode", MediaMode.BLANK) != MediaMode.BLANK or "target" in fields:
            self.label.labelled_s = _now_s()
        self._write_header(sync=True)
        return True

    def _write_header(self, sync: bool = False) -> None:
        """Write the header when its bytes changed (disk file, writable, only). A power-on
        that changed nothing on the media writes nothing at all -- not even its read
        counters -- so a refused or look-only session leaves the file byte-identical."""
        if self._fd is None or self.readonly or not self._started:
            return
        self._hdr.label = self._persisted_label()
        raw = seal(self._hdr)
        if raw != self._on_disk:
            os.pwrite(self._fd, raw, 0)
            self._on_disk = raw
            if sync:
                os.fsync(self._fd)

    # ------------------------------------------------------------------ data
    def _block_extents(self, c: int):
        """(offset, length) in the mapping of block c's data and OOB, page aligned."""
        geo, lay = self.geo, self._layout
        dblk = geo.npages * geo.nplanes * geo.page_nbytes
        oblk = geo.npages * geo.nplanes * geo.oob_nbytes
        d = self._base + lay["data_off"] + c * dblk
        o = self._base + lay["oob_off"] + c * oblk
        page = mmap.PAGESIZE
        start, end = o - o % page, -(-(o + oblk) // page) * page
        return ((d, dblk), (start, end - start))

    def prepare_block(self, cl: np.ndarray) -> None:
        """Blocks (flat ch/lun/blk numbers) whose first page is being programmed: their data
        and OOB are populated at once, on the populating thread (populate.py), ahead of
        the pages that follow; they are complete by the time the media closes."""
        if self._populator is not None:
            self._populator.now(np.asarray(cl).tolist())

    def prepare_erased(self, cl: np.ndarray) -> None:
        """Blocks just erased, about to be written (a pblk line is erased ahead of its
        use): populated when the populating thread has time. For the disk file only, where
        a first touch also allocates the file's blocks; fresh anonymous memory comes in
        2 MiB pages at a fault, cheaply enough to wait for the block's first program."""
        if self._populator is not None and self._fd is not None:
            self._populator.ahead(np.asarray(cl).tolist())

    # ------------------------------------------------------------------ stop
    def flush(self) -> None:
        """Make everything written so far durable (msync), with the label's counters; a
        no-op for volatile media and read-only opens."""
        if self._fd is not None and not self.readonly:
            if self._populator is not None:
                self._populator.settle()      # no page dirtied behind the write-back
            self._mm.flush()
            self._write_header()
            os.fsync(self._fd)

    def shutdown(self) -> None:
        """A controller shutdown: durable, and the header says the writer stopped cleanly."""
        if self.writing:
            self.writing = False
            self._hdr.stop = StopState.CLEAN
            self.label.last_stop_clean = 1
            self.label.last_stop_s = _now_s()
        self.flush()

    def close(self, clean: bool = False) -> None:
        """Flush and release the file. Media still being written (no shutdown since the
        last mutation) stops unsafely, unless `clean` says the owner shut it down."""
        if self._mm is None:
            return
        if self._populator is not None:
            self._populator.close()
            self._populator = None
        if clean:
            self.shutdown()
        else:
            if self.writing:
                self.writing = False
                self._hdr.stop = StopState.UNSAFE
                self.label.unsafe_shutdowns += 1
                self.label.last_stop_clean = 0
            self.flush()
        self.bbt = self.next_page = self.erase_count = self.page_state = self.data = self.oob = None
        self.nvram = None
        try:
            self._mm.close()
        except BufferError:
            pass
        self._mm = None
        if self._fd is not None:
            # Unlock explicitly: a media view still alive keeps the mmap (and its copy of
            # the descriptor) open, which would otherwise hold the lock past close().
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
