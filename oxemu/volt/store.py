"""Where VOLT's bytes live: anonymous memory (volt>0) or a sparse disk file (volt=0).

Disk file format, version 1 (all little-endian):

    0      4 KiB header (VoltHeader below, CRC32C over the struct with crc = 0)
    4 KiB  block-plane state: bbt u8[N], next_page u16[N], erase_count u32[N],
           N = channels*luns*blocks*planes, in (ch, lun, blk, pl) order
    ...    data: sector_nbytes per sector, in (ch, lun, blk, pg, pl, sec) order
    ...    OOB: oob_nbytes per page, in (ch, lun, blk, pg, pl) order

Regions start on 4 KiB boundaries. The file is created sparse, so disk use grows with
data written. A file whose magic, version, CRC or geometry does not match is refused
and left untouched. The file is locked (flock) while open: one device per disk file.
"""
import ctypes
import fcntl
import mmap
import os

import crc32c
import numpy as np

from .geometry import Geometry

MAGIC = b"OXVOLT\x00\x01"
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)   # Linux 5.14
VERSION = 1
HEADER_NBYTES = 4096


class StoreError(Exception):
    """The disk file cannot be used (wrong geometry, corrupt header, locked, I/O error)."""


class VoltHeader(ctypes.LittleEndianStructure):
    """On-disk header of a VOLT media file (this project's own format)."""
    _pack_ = 1
    _fields_ = [
        ("magic", ctypes.c_char * 8), ("version", ctypes.c_uint32), ("header_nbytes", ctypes.c_uint32),
        ("nchannels", ctypes.c_uint32), ("nluns", ctypes.c_uint32), ("nblocks", ctypes.c_uint32),
        ("npages", ctypes.c_uint32), ("nplanes", ctypes.c_uint32), ("nsectors", ctypes.c_uint32),
        ("sector_nbytes", ctypes.c_uint32), ("oob_nbytes", ctypes.c_uint32),
        ("state_off", ctypes.c_uint64), ("data_off", ctypes.c_uint64), ("oob_off", ctypes.c_uint64),
        ("file_nbytes", ctypes.c_uint64), ("clean", ctypes.c_uint32), ("crc", ctypes.c_uint32),
    ]


_GEO_FIELDS = ("nchannels", "nluns", "nblocks", "npages", "nplanes", "nsectors",
               "sector_nbytes", "oob_nbytes")


def _align(n: int, a: int = 4096) -> int:
    return (n + a - 1) // a * a


def layout(geo: Geometry) -> dict:
    n = geo.block_planes
    state_off = HEADER_NBYTES
    data_off = _align(state_off + n * (1 + 2 + 4))
    oob_off = _align(data_off + geo.data_nbytes)
    return dict(state_off=state_off, data_off=data_off, oob_off=oob_off,
                file_nbytes=_align(oob_off + geo.oob_total_nbytes), n=n)


def _header_crc(h: VoltHeader) -> int:
    raw = bytearray(bytes(h))
    raw[VoltHeader.crc.offset:VoltHeader.crc.offset + 4] = b"\0\0\0\0"
    return crc32c.crc32c(bytes(raw))


def probe_geometry(path: str) -> Geometry | None:
    """The geometry recorded in an existing disk file; None if there is no such file.

    Raises StoreError when the file exists but is not a valid OX disk file.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(ctypes.sizeof(VoltHeader))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"{path}: cannot read disk file: {e.strerror}") from None
    if len(raw) == 0:
        return None
    if len(raw) < ctypes.sizeof(VoltHeader) or raw[:6] != MAGIC[:6]:
        raise StoreError(f"{path}: not an OX disk file (bad magic); refusing to use it")
    h = VoltHeader.from_buffer_copy(raw)
    if h.version != VERSION or h.crc != _header_crc(h):
        raise StoreError(f"{path}: disk file header is corrupt or of another version; refusing to use it")
    try:
        return Geometry(h.nchannels, h.nluns, h.nblocks, h.npages, h.nplanes, h.nsectors,
                        sector_nbytes=h.sector_nbytes, oob_nbytes=h.oob_nbytes)
    except ValueError as e:
        raise StoreError(f"{path}: disk file records an impossible {e}; refusing to use it") from None


class Store:
    """Byte regions of the media: state tables, data and OOB, as numpy views."""

    def __init__(self, geo: Geometry, path: str | None = None, factory_bad=None):
        self.geo = geo
        self.path = path
        self._fd = None
        self._populate = True
        self._layout = lay = layout(geo)
        if path is None:
            self._mm = mmap.mmap(-1, lay["file_nbytes"], flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            # A block's data is 4 MiB contiguous, so 2 MiB pages still fill only as data
            # arrives, and first-touch programs fault 512x less often. Not for the OOB
            # region: 1 KiB stores scattered over fresh huge pages are slower there.
            if hasattr(mmap, "MADV_HUGEPAGE"):
                self._mm.madvise(mmap.MADV_HUGEPAGE, lay["data_off"], geo.data_nbytes)
            created = True
        else:
            created = self._open_file(path, lay)
        buf = np.frombuffer(self._mm, dtype=np.uint8)
        n, s = lay["n"], lay["state_off"]
        shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        self.bbt = buf[s:s + n].reshape(shape)
        self.next_page = buf[s + n:s + 3 * n].view("<u2").reshape(shape)
        self.erase_count = buf[s + 3 * n:s + 7 * n].view("<u4").reshape(shape)
        d = lay["data_off"]
        self.data = buf[d:d + geo.data_nbytes].reshape(
            geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes,
            geo.nsectors * geo.sector_nbytes)
        o = lay["oob_off"]
        self.oob = buf[o:o + geo.oob_total_nbytes].reshape(
            geo.nchannels, geo.nluns, geo.nblocks, geo.npages, geo.nplanes, geo.oob_nbytes)
        self.created = created
        if created and factory_bad is not None:
            self.bbt[factory_bad] = 1
        if path is not None:
            self._set_clean(False)

    def _open_file(self, path: str, lay: dict) -> bool:
        geo = self.geo
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"{path}: cannot open disk file: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{path}: disk file is in use by another process") from None
        try:
            size = os.fstat(fd).st_size
            created = size == 0
            if created:
                os.ftruncate(fd, lay["file_nbytes"])
                h = VoltHeader(magic=MAGIC, version=VERSION, header_nbytes=HEADER_NBYTES,
                               state_off=lay["state_off"], data_off=lay["data_off"],
                               oob_off=lay["oob_off"], file_nbytes=lay["file_nbytes"], clean=1,
                               **{f: getattr(geo, f) for f in _GEO_FIELDS})
                # c_char arrays stop at the first NUL: copy the whole 8-byte magic in
                ctypes.memmove(ctypes.addressof(h) + VoltHeader.magic.offset, MAGIC, len(MAGIC))
                h.crc = _header_crc(h)
                os.pwrite(fd, bytes(h), 0)
            else:
                self._check_header(path, os.pread(fd, ctypes.sizeof(VoltHeader), 0), size, lay)
            self._mm = mmap.mmap(fd, lay["file_nbytes"], flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return created

    def _check_header(self, path, raw: bytes, size: int, lay: dict) -> None:
        if len(raw) < ctypes.sizeof(VoltHeader) or raw[:6] != MAGIC[:6]:
            raise StoreError(f"{path}: not an OX disk file (bad magic); refusing to use it")
        h = VoltHeader.from_buffer_copy(raw)
        if h.version != VERSION:
            raise StoreError(f"{path}: disk file version {h.version}, this build reads {VERSION}")
        if h.crc != _header_crc(h):
            raise StoreError(f"{path}: disk file header is corrupt (CRC mismatch); refusing to use it")
        theirs = tuple(getattr(h, f) for f in _GEO_FIELDS)
        ours = tuple(getattr(self.geo, f) for f in _GEO_FIELDS)
        if theirs != ours:
            other = "{}ch x {}lun x {}blk x {}pg x {}pl x {}sec x {}B".format(*theirs[:7])  # may be invalid
            raise StoreError(f"{path}: disk file geometry {other} does not match "
                             f"the device's {self.geo.describe()}")
        if (h.state_off, h.data_off, h.oob_off, h.file_nbytes) != (
                lay["state_off"], lay["data_off"], lay["oob_off"], lay["file_nbytes"]) \
                or size < h.file_nbytes:
            raise StoreError(f"{path}: disk file layout or size is wrong (truncated?); refusing to use it")
        self.was_clean = bool(h.clean)

    def _set_clean(self, clean: bool) -> None:
        raw = os.pread(self._fd, ctypes.sizeof(VoltHeader), 0)
        h = VoltHeader.from_buffer_copy(raw)
        h.clean = int(clean)
        h.crc = _header_crc(h)
        os.pwrite(self._fd, bytes(h), 0)

    def prepare_block(self, cl: np.ndarray) -> None:
        """Fault in the data and OOB of blocks (flat ch/lun/blk numbers) about to be written.

        For the disk file only: one MADV_POPULATE_WRITE per block replaces hundreds of
        single-page faults into the sparse file (4x faster first writes), and it runs when
        a block's first page is programmed, so the file still grows with data written.
        """
        if self._fd is None or not self._populate:
            return
        geo = self.geo
        dblk = geo.npages * geo.nplanes * geo.page_nbytes
        oblk = geo.npages * geo.nplanes * geo.oob_nbytes
        lay = self._layout
        try:
            for c in cl.tolist():
                self._mm.madvise(MADV_POPULATE_WRITE, lay["data_off"] + c * dblk, dblk)
                o = lay["oob_off"] + c * oblk
                start = o - o % mmap.PAGESIZE
                self._mm.madvise(MADV_POPULATE_WRITE, start, o + oblk - start)
        except OSError:               # kernel without it (< 5.14): plain faults still work
            self._populate = False

    def flush(self) -> None:
        """Make everything written so far durable (msync); a no-op for volatile media."""
        if self._fd is not None:
            self._mm.flush()
            os.fsync(self._fd)

    def close(self, clean: bool = True) -> None:
        """Flush and release the file; `clean=False` after a power cut leaves the header
        saying the media stopped uncleanly."""
        if self._mm is None:
            return
        if self._fd is not None:
            self.flush()
            self._set_clean(clean)
            os.fsync(self._fd)
        self.bbt = self.next_page = self.erase_count = self.data = self.oob = None
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
