"""The FUSE file system: a root directory holding `volume` (the block device as a regular
file), `stats` (JSON counters, read-only) and, over pblk, a `pblk` directory of pblk's sysfs
files (oxhost.pblk.sysfs writes their text). Handlers are thin and synchronous: they run on
the Trio thread that serves the session (oxhost.fuse.lowlevel), call the BlockDevice
directly and translate its errors to FUSEError at the edge (SPEC 9). fallocate on the
volume carries discard and write-zeroes from a loop device (fstrim, blkdiscard) down to the
FTL."""
import errno
import json
import logging
import os
import stat
import time

from ..blockdev import BlockDeviceError, MediaError
from . import lowlevel as ll
from .lowlevel import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_WRITE_ZEROES,
    FALLOC_FL_ZERO_RANGE,
    FUSEError,
)

log = logging.getLogger(__name__)

ROOT_INO = ll.ROOT_INODE
VOLUME_INO = ROOT_INO + 1
STATS_INO = ROOT_INO + 2
SYSFS_DIR_INO = ROOT_INO + 3     # `pblk/`, when the stack has one
SYSFS_FILE_INO = ROOT_INO + 4    # its files, in the order the sysfs object lists them
VOLUME_NAME = b"volume"
STATS_NAME = b"stats"
_NAMES = {VOLUME_NAME: VOLUME_INO, STATS_NAME: STATS_INO}
SYSFS_FILE_NBYTES = 4096         # what sysfs reports for every attribute: one page
_ATTR_TIMEOUT = 300.0        # nothing changes behind the kernel's back but the stats size
READ_BUFFER_NBYTES = 1 << 20  # the largest read the kernel sends (max_pages of 4 KiB)


def _jsonable(obj):
    """json.dumps fallback: numpy scalars and arrays, then anything else as text."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class VolumeFs(ll.Operations):
    """SPEC 9 `fuse`: `volume` reads/writes go straight to the block device, `fsync` on it is
    a device flush; `stats` is regenerated on every open. Owner-only unless `allow_other`.

    `info` is a JSON-able dict describing the stack (mode, geometry, LUNs, disk) that the
    stats file carries next to `blockdev.stats()`.

    `write_log` (oxhost.blocklog.BlockLog; lab use) hears of every read, write and
    zeroing of the volume before it is done (and if it failed), and of every flush once it
    succeeded.

    `sysfs` (oxhost.pblk.sysfs.PblkSysfs, or anything with `name`, `files`, `mode(name)`,
    `show(name)` and `store(name, data)`) adds the directory `sysfs.name` with one file per
    name, each with the mode sysfs gives it (owner-only unless `allow_other`): a read gets
    the text as it was at open, a write to a writable file is one store (sysfs semantics).
    """

    def __init__(self, blockdev, info: dict | None = None, *, uid: int | None = None,
                 gid: int | None = None, allow_other: bool = False, sysfs=None, write_log=None):
        self.blockdev = blockdev
        self.write_log = write_log
        self.size = blockdev.size
        self.info = dict(info or {})
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        now = time.time_ns()
        self._mode = {ROOT_INO: stat.S_IFDIR | (0o755 if allow_other else 0o700),
                      VOLUME_INO: stat.S_IFREG | (0o666 if allow_other else 0o600),
                      STATS_INO: stat.S_IFREG | (0o444 if allow_other else 0o400)}
        self.sysfs = sysfs
        self._names = dict(_NAMES)
        self._sys_ino: dict[bytes, int] = {}            # sysfs file name -> inode
        self._sys_name: dict[int, str] = {}             # inode -> sysfs file name
        self._sys_writable: set[int] = set()
        root_entries = [(VOLUME_NAME, VOLUME_INO), (STATS_NAME, STATS_INO)]
        if sysfs is not None:
            self._names[sysfs.name.encode()] = SYSFS_DIR_INO
            root_entries.append((sysfs.name.encode(), SYSFS_DIR_INO))
            self._mode[SYSFS_DIR_INO] = stat.S_IFDIR | (0o755 if allow_other else 0o700)
            for i, name in enumerate(sysfs.files):
                ino = SYSFS_FILE_INO + i
                perm = sysfs.mode(name)
                self._mode[ino] = stat.S_IFREG | (perm if allow_other else perm & 0o700)
                self._sys_ino[name.encode()] = ino
                self._sys_name[ino] = name
                if perm & 0o222:
                    self._sys_writable.add(ino)
        self._root_entries = tuple(root_entries)
        self._sys_entries = tuple(self._sys_ino.items())
        self._owner = {ino: (self.uid, self.gid) for ino in self._mode}
        self._times = {ino: [now, now, now] for ino in self._mode}     # atime, mtime, ctime
        self._handles: dict[int, bytes | None] = {}    # fh -> stats snapshot (None: volume)
        self._direct: set[int] = set()                  # volume handles opened with O_DIRECT
        self._next_fh = 1
        self._stats_size = 0
        # counters; `io_count` also tells the background task whether the volume is idle
        self.io_count = 0
        self.reads = self.writes = self.fsyncs = self.discards = self.zeroes = 0
        self.read_bytes = self.write_bytes = self.discard_bytes = self.zero_bytes = 0
        self.errors = 0
        self._stats_size = len(self.stats_bytes())
        # Volume reads land in this buffer (guest RAM when the device is on a DMA bus) and
        # are replied from it: the binding sends a reply before the next request is read.
        secb = blockdev.sector_nbytes
        self._rbuf = blockdev.buf_alloc(READ_BUFFER_NBYTES + 2 * secb)
        self._rbuf_max = READ_BUFFER_NBYTES

    # ------------------------------------------------------------------ helpers
    def _fail(self, what: str, e: Exception) -> FUSEError:
        """The one place an error becomes an errno: a block-device error class carries the
        errno a real disk gives (EIO, ENOSPC, EROFS, EINVAL for misuse); anything else is a
        bug, answered EIO and logged with its traceback."""
        self.errors += 1
        if isinstance(e, FUSEError):
            return e
        if isinstance(e, BlockDeviceError):
            log.error("%s: %s: %s", what, type(e).__name__, e)
            return FUSEError(e.errno)
        if isinstance(e, OSError) and e.errno:
            log.error("%s: %s", what, e)
            return FUSEError(e.errno)
        log.error("%s failed: %s: %s", what, type(e).__name__, e, exc_info=e)
        return FUSEError(errno.EIO)

    def stats_document(self) -> dict:
        """blockdev.stats() plus what the stack is and the FUSE layer's own counters."""
        try:
            doc = dict(self.blockdev.stats())
        except Exception as e:
            log.exception("blockdev.stats() failed")
            doc = {"stats_error": f"{type(e).__name__}: {e}"}
        doc.update(self.info)
        doc["size"] = self.size
        doc["fuse"] = {"reads": self.reads, "writes": self.writes, "fsyncs": self.fsyncs,
                       "read_bytes": self.read_bytes, "write_bytes": self.write_bytes,
                       "discards": self.discards, "discard_bytes": self.discard_bytes,
                       "zeroes": self.zeroes, "zero_bytes": self.zero_bytes,
                       "errors": self.errors}
        doc["time"] = time.time()
        return doc

    def stats_bytes(self) -> bytes:
        text = json.dumps(self.stats_document(), indent=2, sort_keys=True, default=_jsonable)
        return (text + "\n").encode()

    def _attr(self, ino: int) -> ll.EntryParam:
        timeout, nlink = _ATTR_TIMEOUT, 1
        if ino == VOLUME_INO:
            size = self.size
        elif ino == STATS_INO:
            size, timeout = self._stats_size, 1.0
        elif ino in self._sys_name:
            size, timeout = SYSFS_FILE_NBYTES, 1.0
        else:                                           # a directory
            size = 0
            nlink = 3 if ino == ROOT_INO and self.sysfs is not None else 2
        return ll.entry(ino, self._mode[ino], size=size, nlink=nlink,
                        uid=self._owner[ino][0], gid=self._owner[ino][1],
                        blksize=self.blockdev.sector_nbytes, times_ns=self._times[ino],
                        timeout=timeout)

    # ------------------------------------------------------------------ namespace
    def lookup(self, parent, name):
        if parent == ROOT_INO:
            if name in (b".", b".."):
                return self._attr(ROOT_INO)
            ino = self._names.get(bytes(name))
        elif parent == SYSFS_DIR_INO and self.sysfs is not None:
            if name in (b".", b".."):
                return self._attr(SYSFS_DIR_INO if name == b"." else ROOT_INO)
            ino = self._sys_ino.get(bytes(name))
        else:
            raise FUSEError(errno.ENOTDIR)
        if ino is None:
            raise FUSEError(errno.ENOENT)
        return self._attr(ino)

    def getattr(self, ino, fh=None):
        if ino not in self._mode:
            raise FUSEError(errno.ENOENT)
        return self._attr(ino)

    def setattr(self, ino, attr: ll.Stat, to_set: int, fh=None):
        if ino not in self._mode:
            raise FUSEError(errno.ENOENT)
        if to_set & ll.SET_ATTR_SIZE and ino in self._sys_name:
            if ino not in self._sys_writable:
                raise FUSEError(errno.EACCES)
            # sysfs ignores the truncation `echo 0 > attr` asks for
        elif to_set & ll.SET_ATTR_SIZE:
            size = self.size if ino == VOLUME_INO else (0 if ino == ROOT_INO else None)
            if size is None:
                raise FUSEError(errno.EACCES)
            if attr.st_size > size:
                raise FUSEError(errno.EFBIG)
            if attr.st_size < size:
                raise FUSEError(errno.EPERM)     # a volume has a fixed size
        now = time.time_ns()
        t = self._times[ino]
        atime, mtime, ctime = ll.stat_times_ns(attr)
        if to_set & ll.SET_ATTR_MODE:
            self._mode[ino] = stat.S_IFMT(self._mode[ino]) | stat.S_IMODE(attr.st_mode)
        if to_set & (ll.SET_ATTR_UID | ll.SET_ATTR_GID):
            uid, gid = self._owner[ino]
            self._owner[ino] = (attr.st_uid if to_set & ll.SET_ATTR_UID else uid,
                                attr.st_gid if to_set & ll.SET_ATTR_GID else gid)
        if to_set & ll.SET_ATTR_ATIME_NOW:
            t[0] = now
        elif to_set & ll.SET_ATTR_ATIME:
            t[0] = atime
        if to_set & ll.SET_ATTR_MTIME_NOW:
            t[1] = now
        elif to_set & ll.SET_ATTR_MTIME:
            t[1] = mtime
        t[2] = ctime if to_set & ll.SET_ATTR_CTIME else now
        return self._attr(ino)

    def opendir(self, ino):
        if ino != ROOT_INO and (ino != SYSFS_DIR_INO or self.sysfs is None):
            raise FUSEError(errno.ENOTDIR)
        return ll.FileInfo(ino)

    def readdir(self, ino, fh, off):
        entries = self._sys_entries if ino == SYSFS_DIR_INO else self._root_entries
        return [(name, self._attr(i), n + 1) for n, (name, i) in enumerate(entries) if n >= off]

    def releasedir(self, ino, fh):
        pass

    def statfs(self, ino):
        s = ll.Statvfs()
        s.f_bsize = s.f_frsize = self.blockdev.sector_nbytes
        s.f_blocks = self.size // s.f_frsize
        s.f_bfree = s.f_bavail = 0
        s.f_files = len(self._mode)
        s.f_ffree = s.f_favail = 0
        s.f_namemax = 255
        return s

    # A fixed namespace: nothing can be created, removed or renamed.
    def create(self, parent, name, mode, flags):
        raise FUSEError(errno.EPERM)

    def mknod(self, parent, name, mode, rdev):
        raise FUSEError(errno.EPERM)

    def mkdir(self, parent, name, mode):
        raise FUSEError(errno.EPERM)

    def unlink(self, parent, name):
        raise FUSEError(errno.EPERM)

    def rmdir(self, parent, name):
        raise FUSEError(errno.EPERM)

    def rename(self, parent, name, new_parent, new_name, flags):
        raise FUSEError(errno.EPERM)

    def symlink(self, target, parent, name):
        raise FUSEError(errno.EPERM)

    def link(self, ino, new_parent, new_name):
        raise FUSEError(errno.EPERM)

    # ------------------------------------------------------------------ files
    def open(self, ino, flags):
        if ino == ROOT_INO or ino == SYSFS_DIR_INO:
            raise FUSEError(errno.EISDIR)
        if ino not in self._mode:
            raise FUSEError(errno.ENOENT)
        if ino in self._sys_name:
            return self._open_sysfs(ino, flags)
        fh = self._next_fh
        self._next_fh += 1
        if ino == STATS_INO:
            if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                raise FUSEError(errno.EACCES)
            snap = self.stats_bytes()
            self._stats_size = len(snap)
            self._handles[fh] = snap
            # direct_io: every open reads the fresh snapshot, not a cached page
            return ll.FileInfo(fh, direct_io=True, keep_cache=False)
        if flags & os.O_TRUNC:
            raise FUSEError(errno.EPERM)     # the volume cannot shrink
        self._handles[fh] = None
        if flags & os.O_DIRECT:
            self._direct.add(fh)
        # Only this process changes the volume, so the kernel's cached pages stay valid.
        return ll.FileInfo(fh, keep_cache=True)

    def _open_sysfs(self, ino: int, flags: int) -> ll.FileInfo:
        """A sysfs file: writing only where there is a store (EACCES elsewhere, as kernfs
        answers), and the text as it is now for reading (empty for a write-only file)."""
        name = self._sys_name[ino]
        acc = flags & os.O_ACCMODE
        if (acc != os.O_RDONLY or flags & os.O_TRUNC) and ino not in self._sys_writable:
            raise FUSEError(errno.EACCES)
        snap = b""
        if acc != os.O_WRONLY and self.sysfs.mode(name) & 0o444:
            try:
                snap = self.sysfs.show(name)
            except Exception as e:      # noqa: BLE001 - only FUSEError leaves a handler
                raise self._fail(f"read {self.sysfs.name}/{name}", e) from None
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = snap
        return ll.FileInfo(fh, direct_io=True, keep_cache=False)

    def _write_sysfs(self, ino: int, buf) -> int:
        """One write is one store of its bytes (the offset does not matter, as in sysfs)."""
        name = self._sys_name[ino]
        self.io_count += 1                  # a store may work the device (gc_force)
        try:
            self.sysfs.store(name, bytes(buf))
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            raise self._fail(f"write {self.sysfs.name}/{name}", e) from None
        self._times[ino][1] = time.time_ns()
        return len(buf)

    def read(self, ino, fh, off, size):
        if ino != VOLUME_INO:
            snap = self._handles.get(fh)
            if snap is None:
                raise FUSEError(errno.EBADF)
            return snap[off:off + size]
        if off >= self.size:
            return b""
        self.io_count += 1
        self.reads += 1
        if self.write_log is not None:
            self.write_log.read(off, size)
        try:
            # the result is valid until the next read (the binding replies from it at once)
            data = self.blockdev.read(off, size, out=self._rbuf if size <= self._rbuf_max else None)
        except MediaError as e:
            # O_DIRECT gets the good bytes before the bad sector (a short read; the caller's
            # retry of the rest then fails). A cached read must fail whole: the kernel takes a
            # short reply for the end of the file and would zero-fill the rest; it retries
            # page by page instead, so every good page is still served.
            if fh in self._direct and e.valid_nbytes:
                self.errors += 1
                log.error("read %d bytes at %d: %s; %d bytes served", size, off, e, e.valid_nbytes)
                self.read_bytes += e.valid_nbytes
                return e.data[:e.valid_nbytes]
            raise self._fail(f"read {size} bytes at {off}", e) from None
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            raise self._fail(f"read {size} bytes at {off}", e) from None
        self.read_bytes += data.nbytes
        return data                     # replied from directly: no copy

    def write(self, ino, fh, off, buf):
        if ino != VOLUME_INO:
            if ino in self._sys_writable:
                return self._write_sysfs(ino, buf)
            raise FUSEError(errno.EBADF)
        n = len(buf)
        if off >= self.size:
            raise FUSEError(errno.ENOSPC if off == self.size else errno.EFBIG)
        if off + n > self.size:
            n = self.size - off             # short write; the retry of the rest gets ENOSPC
            buf = buf[:n]
        self.io_count += 1
        self.writes += 1
        if self.write_log is not None:
            self.write_log.write(off, buf)
        try:
            self.blockdev.write(off, buf)
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            if self.write_log is not None:
                self.write_log.failed()
            raise self._fail(f"write {n} bytes at {off}", e) from None
        self.write_bytes += n
        self._times[VOLUME_INO][1] = time.time_ns()
        return n

    def fallocate(self, ino, fh, mode, off, length):
        """The volume's fixed size is always allocated, so plain fallocate succeeds inside it
        (EFBIG beyond: the file cannot grow). PUNCH_HOLE (always with KEEP_SIZE) is a
        discard, ZERO_RANGE (and WRITE_ZEROES) a write-zeroes; the loop driver sends these
        for REQ_OP_DISCARD / REQ_OP_WRITE_ZEROES. Both become BlockDevice.write_zeroes:
        whole sectors are unmapped (they read back as zeros), partial ones at the edges
        are zeroed by writing. Other modes (collapse, insert, unshare) are EOPNOTSUPP."""
        log.debug("fallocate mode %#x, %d bytes at %d", mode, length, off)
        if ino != VOLUME_INO:
            raise FUSEError(errno.EBADF if ino in self._mode else errno.ENOENT)
        if off < 0 or length <= 0:
            raise FUSEError(errno.EINVAL)
        end = off + length
        keep = mode & FALLOC_FL_KEEP_SIZE
        what = mode & ~FALLOC_FL_KEEP_SIZE
        if what == FALLOC_FL_PUNCH_HOLE:
            if not keep:
                raise FUSEError(errno.EOPNOTSUPP)   # the kernel never sends this
        elif what not in (0, FALLOC_FL_ZERO_RANGE, FALLOC_FL_WRITE_ZEROES):
            raise FUSEError(errno.EOPNOTSUPP)
        if end > self.size and not keep:
            raise FUSEError(errno.EFBIG)        # the volume cannot grow
        end = min(end, self.size)
        if what == 0 or off >= end:
            return                              # allocated already / nothing inside the file
        self.io_count += 1
        if self.write_log is not None:
            self.write_log.zero(off, end - off)
        try:
            self.blockdev.write_zeroes(off, end - off)
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            if self.write_log is not None:
                self.write_log.failed()
            raise self._fail(f"fallocate mode {mode:#x} of {end - off} bytes at {off}", e) from None
        if what == FALLOC_FL_PUNCH_HOLE:
            self.discards += 1
            self.discard_bytes += end - off
        else:
            self.zeroes += 1
            self.zero_bytes += end - off
        self._times[VOLUME_INO][1] = time.time_ns()

    def fsync(self, ino, fh, datasync):
        if ino != VOLUME_INO:
            return
        self.io_count += 1
        self.fsyncs += 1
        try:
            self.blockdev.flush()
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            raise self._fail("flush", e) from None
        if self.write_log is not None:
            self.write_log.flush()

    def flush(self, ino, fh):
        """close(2): nothing to do, durability is fsync's job (as for a disk)."""

    def release(self, ino, fh):
        self._handles.pop(fh, None)
        self._direct.discard(fh)
