"""The FUSE file system: a root directory holding `volume` (the block device as a regular
file) and `stats` (JSON counters, read-only). Handlers are thin: they call the synchronous
BlockDevice directly and translate its errors to FUSEError at the edge (SPEC 9)."""
import errno
import json
import logging
import os
import stat
import time

import pyfuse3

from ..blockdev import BlockDeviceError, MediaError

log = logging.getLogger(__name__)

ROOT_INO = pyfuse3.ROOT_INODE
VOLUME_INO = ROOT_INO + 1
STATS_INO = ROOT_INO + 2
VOLUME_NAME = b"volume"
STATS_NAME = b"stats"
_NAMES = {VOLUME_NAME: VOLUME_INO, STATS_NAME: STATS_INO}
_ATTR_TIMEOUT = 300.0        # nothing changes behind the kernel's back but the stats size


def _jsonable(obj):
    """json.dumps fallback: numpy scalars and arrays, then anything else as text."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class VolumeFs(pyfuse3.Operations):
    """SPEC 9 `fuse`: `volume` reads/writes go straight to the block device, `fsync` on it is
    a device flush; `stats` is regenerated on every open. Owner-only unless `allow_other`.

    `info` is a JSON-able dict describing the stack (mode, geometry, LUNs, disk) that the
    stats file carries next to `blockdev.stats()`.
    """

    def __init__(self, blockdev, info: dict | None = None, *, uid: int | None = None,
                 gid: int | None = None, allow_other: bool = False):
        super().__init__()
        self.blockdev = blockdev
        self.size = blockdev.size
        self.info = dict(info or {})
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        now = time.time_ns()
        self._mode = {ROOT_INO: stat.S_IFDIR | (0o755 if allow_other else 0o700),
                      VOLUME_INO: stat.S_IFREG | (0o666 if allow_other else 0o600),
                      STATS_INO: stat.S_IFREG | (0o444 if allow_other else 0o400)}
        self._owner = {ino: (self.uid, self.gid) for ino in self._mode}
        self._times = {ino: [now, now, now] for ino in self._mode}     # atime, mtime, ctime
        self._handles: dict[int, bytes | None] = {}    # fh -> stats snapshot (None: volume)
        self._direct: set[int] = set()                  # volume handles opened with O_DIRECT
        self._next_fh = 1
        self._stats_size = 0
        # counters; `io_count` also tells the background task whether the volume is idle
        self.io_count = 0
        self.reads = self.writes = self.fsyncs = 0
        self.read_bytes = self.write_bytes = 0
        self.errors = 0
        self._stats_size = len(self.stats_bytes())

    # ------------------------------------------------------------------ helpers
    def _fail(self, what: str, e: Exception) -> pyfuse3.FUSEError:
        """The one place an error becomes an errno: a block-device error class carries the
        errno a real disk gives (EIO, ENOSPC, EROFS, EINVAL for misuse); anything else is a
        bug, answered EIO and logged with its traceback."""
        self.errors += 1
        if isinstance(e, pyfuse3.FUSEError):
            return e
        if isinstance(e, BlockDeviceError):
            log.error("%s: %s: %s", what, type(e).__name__, e)
            return pyfuse3.FUSEError(e.errno)
        if isinstance(e, OSError) and e.errno:
            log.error("%s: %s", what, e)
            return pyfuse3.FUSEError(e.errno)
        log.error("%s failed: %s: %s", what, type(e).__name__, e, exc_info=e)
        return pyfuse3.FUSEError(errno.EIO)

    def stats_document(self) -> dict:
        """blockdev.stats() plus what the stack is and the FUSE layer's own counters."""
        try:
            doc = dict(self.blockdev.stats())
        except Exception as e:          # noqa: BLE001 - a stats bug must not break the mount
            log.exception("blockdev.stats() failed")
            doc = {"stats_error": f"{type(e).__name__}: {e}"}
        doc.update(self.info)
        doc["size"] = self.size
        doc["fuse"] = {"reads": self.reads, "writes": self.writes, "fsyncs": self.fsyncs,
                       "read_bytes": self.read_bytes, "write_bytes": self.write_bytes,
                       "errors": self.errors}
        doc["time"] = time.time()
        return doc

    def stats_bytes(self) -> bytes:
        text = json.dumps(self.stats_document(), indent=2, sort_keys=True, default=_jsonable)
        return (text + "\n").encode()

    def _attr(self, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.st_mode = self._mode[ino]
        a.st_uid, a.st_gid = self._owner[ino]
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = self._times[ino]
        a.st_blksize = self.blockdev.sector_nbytes
        if ino == ROOT_INO:
            a.st_nlink = 2
            a.st_size = 0
        elif ino == VOLUME_INO:
            a.st_nlink = 1
            a.st_size = self.size
        else:
            a.st_nlink = 1
            a.st_size = self._stats_size
        a.st_blocks = (a.st_size + 511) // 512
        a.attr_timeout = a.entry_timeout = 1.0 if ino == STATS_INO else _ATTR_TIMEOUT
        a.generation = 0
        return a

    # ------------------------------------------------------------------ namespace
    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode != ROOT_INO:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if name in (b".", b".."):
            return self._attr(ROOT_INO)
        ino = _NAMES.get(bytes(name))
        if ino is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(ino)

    async def getattr(self, inode, ctx=None):
        if inode not in self._mode:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(inode)

    async def setattr(self, inode, attr, fields, fh, ctx=None):
        if inode not in self._mode:
            raise pyfuse3.FUSEError(errno.ENOENT)
        if fields.update_size:
            size = self.size if inode == VOLUME_INO else (0 if inode == ROOT_INO else None)
            if size is None:
                raise pyfuse3.FUSEError(errno.EACCES)
            if attr.st_size > size:
                raise pyfuse3.FUSEError(errno.EFBIG)
            if attr.st_size < size:
                raise pyfuse3.FUSEError(errno.EPERM)     # a volume has a fixed size
        now = time.time_ns()
        t = self._times[inode]
        if fields.update_mode:
            self._mode[inode] = stat.S_IFMT(self._mode[inode]) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid or fields.update_gid:
            uid, gid = self._owner[inode]
            self._owner[inode] = (attr.st_uid if fields.update_uid else uid,
                                  attr.st_gid if fields.update_gid else gid)
        if fields.update_atime:
            t[0] = attr.st_atime_ns
        if fields.update_mtime:
            t[1] = attr.st_mtime_ns
        t[2] = attr.st_ctime_ns if fields.update_ctime else now
        return self._attr(inode)

    async def opendir(self, inode, ctx=None):
        if inode != ROOT_INO:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh, start_id, token):
        entries = ((VOLUME_NAME, VOLUME_INO), (STATS_NAME, STATS_INO))
        for i in range(start_id, len(entries)):
            name, ino = entries[i]
            if not pyfuse3.readdir_reply(token, name, self._attr(ino), i + 1):
                break

    async def releasedir(self, fh):
        pass

    async def statfs(self, ctx=None):
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = self.blockdev.sector_nbytes
        s.f_blocks = self.size // s.f_frsize
        s.f_bfree = s.f_bavail = 0
        s.f_files = len(self._mode)
        s.f_ffree = s.f_favail = 0
        s.f_namemax = 255
        return s

    # A fixed namespace: nothing can be created, removed or renamed.
    async def create(self, parent_inode, name, mode, flags, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def mknod(self, parent_inode, name, mode, rdev, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def mkdir(self, parent_inode, name, mode, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def unlink(self, parent_inode, name, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def rmdir(self, parent_inode, name, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def symlink(self, parent_inode, name, target, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    async def link(self, inode, new_parent_inode, new_name, ctx=None):
        raise pyfuse3.FUSEError(errno.EPERM)

    # ------------------------------------------------------------------ files
    async def open(self, inode, flags, ctx=None):
        if inode == ROOT_INO:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if inode not in self._mode:
            raise pyfuse3.FUSEError(errno.ENOENT)
        fh = self._next_fh
        self._next_fh += 1
        if inode == STATS_INO:
            if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                raise pyfuse3.FUSEError(errno.EACCES)
            snap = self.stats_bytes()
            self._stats_size = len(snap)
            self._handles[fh] = snap
            # direct_io: every open reads the fresh snapshot, not a cached page
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)
        if flags & os.O_TRUNC:
            raise pyfuse3.FUSEError(errno.EPERM)     # the volume cannot shrink
        self._handles[fh] = None
        if flags & os.O_DIRECT:
            self._direct.add(fh)
        # Only this process changes the volume, so the kernel's cached pages stay valid.
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    async def read(self, fh, off, size):
        snap = self._handles.get(fh, None)
        if snap is not None:
            return snap[off:off + size]
        if off >= self.size:
            return b""
        self.io_count += 1
        self.reads += 1
        try:
            data = self.blockdev.read(off, size)
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
        return data                     # any contiguous buffer will do: no copy to bytes

    async def write(self, fh, off, buf):
        if self._handles.get(fh, None) is not None:
            raise pyfuse3.FUSEError(errno.EBADF)
        n = len(buf)
        if off >= self.size:
            raise pyfuse3.FUSEError(errno.ENOSPC if off == self.size else errno.EFBIG)
        if off + n > self.size:
            n = self.size - off             # short write; the retry of the rest gets ENOSPC
            buf = memoryview(buf)[:n]
        self.io_count += 1
        self.writes += 1
        try:
            self.blockdev.write(off, buf)
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            raise self._fail(f"write {n} bytes at {off}", e) from None
        self.write_bytes += n
        self._times[VOLUME_INO][1] = time.time_ns()
        return n

    async def fsync(self, fh, datasync):
        if self._handles.get(fh, None) is not None:
            return
        self.io_count += 1
        self.fsyncs += 1
        try:
            self.blockdev.flush()
        except Exception as e:          # noqa: BLE001 - only FUSEError leaves a handler
            raise self._fail("flush", e) from None

    async def flush(self, fh):
        """close(2): nothing to do, durability is fsync's job (as for a disk)."""

    async def release(self, fh):
        self._handles.pop(fh, None)
        self._direct.discard(fh)
