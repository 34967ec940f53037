"""A thin ctypes binding of libfuse 3's low-level API, driven from Trio. It exists because
pyfuse3 cannot dispatch fallocate (discard and write-zeroes from a loop device would be
lost) and copies every write into bytes: here the session's fd is watched with Trio's
wait_readable, each request is received into one numpy buffer and dispatched by libfuse
to synchronous handlers on the Trio thread (no thread hop), writes reach the handler as a
view of that buffer and reads are replied straight from the handler's array (SPEC 9, 11).

Only what a file system of a few fixed files needs is bound: lookup, getattr, setattr,
open/read/write/flush/fsync/release, opendir/readdir/releasedir, statfs, fallocate, and the
namespace calls (so a file system can refuse them with its own errno).
"""
import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import platform
import select
import time

import numpy as np
import trio

log = logging.getLogger(__name__)

ROOT_INODE = 1
DEFAULT_OPTIONS = frozenset({"default_permissions"})

# fallocate(2) modes (linux/falloc.h)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
FALLOC_FL_UNSHARE_RANGE = 0x40
FALLOC_FL_WRITE_ZEROES = 0x80

# setattr's to_set bits (fuse_lowlevel.h FUSE_SET_ATTR_*)
SET_ATTR_MODE = 1 << 0
SET_ATTR_UID = 1 << 1
SET_ATTR_GID = 1 << 2
SET_ATTR_SIZE = 1 << 3
SET_ATTR_ATIME = 1 << 4
SET_ATTR_MTIME = 1 << 5
SET_ATTR_ATIME_NOW = 1 << 7
SET_ATTR_MTIME_NOW = 1 << 8
SET_ATTR_CTIME = 1 << 10

_CAP_SPLICE_WRITE, _CAP_SPLICE_MOVE, _CAP_SPLICE_READ = 1 << 7, 1 << 8, 1 << 9


class FUSEError(Exception):
    """Raised by a handler to answer its request with `errno`; nothing else should leave
    a handler (anything else is logged and answered EIO)."""

    def __init__(self, errno_: int):
        super().__init__(errno_, os.strerror(errno_))
        self.errno = errno_

    def __str__(self) -> str:
        return os.strerror(self.errno)


class SessionError(Exception):
    """libfuse refused to create, mount or run the session (the message says which)."""


# ---------------------------------------------------------------------- C structures
class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_int64)]


if platform.machine() in ("x86_64", "AMD64"):
    class Stat(ctypes.Structure):
        """struct stat, x86-64 glibc layout."""
        _fields_ = [("st_dev", ctypes.c_uint64), ("st_ino", ctypes.c_uint64),
                    ("st_nlink", ctypes.c_uint64), ("st_mode", ctypes.c_uint32),
                    ("st_uid", ctypes.c_uint32), ("st_gid", ctypes.c_uint32),
                    ("_pad0", ctypes.c_int32), ("st_rdev", ctypes.c_uint64),
                    ("st_size", ctypes.c_int64), ("st_blksize", ctypes.c_int64),
                    ("st_blocks", ctypes.c_int64), ("st_atim", Timespec),
                    ("st_mtim", Timespec), ("st_ctim", Timespec),
                    ("_unused", ctypes.c_int64 * 3)]
    _STAT_NBYTES = 144
else:
    class Stat(ctypes.Structure):       # type: ignore[no-redef]
        """struct stat, the asm-generic layout (aarch64, riscv64)."""
        _fields_ = [("st_dev", ctypes.c_uint64), ("st_ino", ctypes.c_uint64),
                    ("st_mode", ctypes.c_uint32), ("st_nlink", ctypes.c_uint32),
                    ("st_uid", ctypes.c_uint32), ("st_gid", ctypes.c_uint32),
                    ("st_rdev", ctypes.c_uint64), ("_pad1", ctypes.c_uint64),
                    ("st_size", ctypes.c_int64), ("st_blksize", ctypes.c_int32),
                    ("_pad2", ctypes.c_int32), ("st_blocks", ctypes.c_int64),
                    ("st_atim", Timespec), ("st_mtim", Timespec), ("st_ctim", Timespec),
                    ("_unused", ctypes.c_uint32 * 2)]
    _STAT_NBYTES = 128
assert ctypes.sizeof(Stat) == _STAT_NBYTES


class EntryParam(ctypes.Structure):
    """struct fuse_entry_param: what lookup, getattr and setattr handlers return (getattr
    and setattr replies use `attr` and `attr_timeout`)."""
    _fields_ = [("ino", ctypes.c_uint64), ("generation", ctypes.c_uint64), ("attr", Stat),
                ("attr_timeout", ctypes.c_double), ("entry_timeout", ctypes.c_double)]


assert ctypes.sizeof(EntryParam) == 32 + _STAT_NBYTES
_ATTR_OFFSET = EntryParam.attr.offset


class Statvfs(ctypes.Structure):
    """struct statvfs (64-bit glibc), what statfs handlers return."""
    _fields_ = [("f_bsize", ctypes.c_ulong), ("f_frsize", ctypes.c_ulong),
                ("f_blocks", ctypes.c_uint64), ("f_bfree", ctypes.c_uint64),
                ("f_bavail", ctypes.c_uint64), ("f_files", ctypes.c_uint64),
                ("f_ffree", ctypes.c_uint64), ("f_favail", ctypes.c_uint64),
                ("f_fsid", ctypes.c_ulong), ("f_flag", ctypes.c_ulong),
                ("f_namemax", ctypes.c_ulong), ("_spare", ctypes.c_int * 6)]


assert ctypes.sizeof(Statvfs) == 112


class _FileInfo(ctypes.Structure):
    """struct fuse_file_info (fuse_common.h, libfuse 3.x)."""
    _fields_ = [("flags", ctypes.c_int), ("writepage", ctypes.c_uint, 1),
                ("direct_io", ctypes.c_uint, 1), ("keep_cache", ctypes.c_uint, 1),
                ("flush", ctypes.c_uint, 1), ("nonseekable", ctypes.c_uint, 1),
                ("flock_release", ctypes.c_uint, 1), ("cache_readdir", ctypes.c_uint, 1),
                ("noflush", ctypes.c_uint, 1), ("padding", ctypes.c_uint, 24),
                ("padding2", ctypes.c_uint, 32), ("fh", ctypes.c_uint64),
                ("lock_owner", ctypes.c_uint64), ("poll_events", ctypes.c_uint32)]


assert ctypes.sizeof(_FileInfo) == 40 and _FileInfo.fh.offset == 16


class _ConnInfo(ctypes.Structure):
    """struct fuse_conn_info (fuse_common.h, libfuse 3.x)."""
    _fields_ = [("proto_major", ctypes.c_uint), ("proto_minor", ctypes.c_uint),
                ("max_write", ctypes.c_uint), ("max_read", ctypes.c_uint),
                ("max_readahead", ctypes.c_uint), ("capable", ctypes.c_uint),
                ("want", ctypes.c_uint), ("max_background", ctypes.c_uint),
                ("congestion_threshold", ctypes.c_uint), ("time_gran", ctypes.c_uint),
                ("reserved", ctypes.c_uint * 22)]


assert ctypes.sizeof(_ConnInfo) == 128


class _Buf(ctypes.Structure):
    """struct fuse_buf: one received request."""
    _fields_ = [("size", ctypes.c_size_t), ("flags", ctypes.c_int), ("mem", ctypes.c_void_p),
                ("fd", ctypes.c_int), ("pos", ctypes.c_int64)]


class _Args(ctypes.Structure):
    """struct fuse_args."""
    _fields_ = [("argc", ctypes.c_int), ("argv", ctypes.POINTER(ctypes.c_char_p)),
                ("allocated", ctypes.c_int)]


_p, _u64, _i64, _sz, _int, _uint, _str = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64,
                                          ctypes.c_size_t, ctypes.c_int, ctypes.c_uint,
                                          ctypes.c_char_p)
_F = ctypes.CFUNCTYPE
# The callbacks, in struct fuse_lowlevel_ops order (libfuse 3.x, 44 slots); None: unbound.
_OPS = (
    ("init", _F(None, _p, ctypes.POINTER(_ConnInfo))), ("destroy", None),
    ("lookup", _F(None, _p, _u64, _str)), ("forget", None),
    ("getattr", _F(None, _p, _u64, _p)),
    ("setattr", _F(None, _p, _u64, ctypes.POINTER(Stat), _int, _p)),
    ("readlink", None),
    ("mknod", _F(None, _p, _u64, _str, _uint, _u64)),
    ("mkdir", _F(None, _p, _u64, _str, _uint)),
    ("unlink", _F(None, _p, _u64, _str)), ("rmdir", _F(None, _p, _u64, _str)),
    ("symlink", _F(None, _p, _str, _u64, _str)),
    ("rename", _F(None, _p, _u64, _str, _u64, _str, _uint)),
    ("link", _F(None, _p, _u64, _u64, _str)),
    ("open", _F(None, _p, _u64, _p)),
    ("read", _F(None, _p, _u64, _sz, _i64, _p)),
    ("write", _F(None, _p, _u64, _p, _sz, _i64, _p)),
    ("flush", _F(None, _p, _u64, _p)), ("release", _F(None, _p, _u64, _p)),
    ("fsync", _F(None, _p, _u64, _int, _p)),
    ("opendir", _F(None, _p, _u64, _p)),
    ("readdir", _F(None, _p, _u64, _sz, _i64, _p)),
    ("releasedir", _F(None, _p, _u64, _p)),
    ("fsyncdir", None), ("statfs", _F(None, _p, _u64)),
    ("setxattr", None), ("getxattr", None), ("listxattr", None), ("removexattr", None),
    ("access", None), ("create", _F(None, _p, _u64, _str, _uint, _p)),
    ("getlk", None), ("setlk", None), ("bmap", None), ("ioctl", None), ("poll", None),
    ("write_buf", None), ("retrieve_reply", None), ("forget_multi", None), ("flock", None),
    ("fallocate", _F(None, _p, _u64, _int, _i64, _i64, _p)),
    ("readdirplus", None), ("copy_file_range", None), ("lseek", None),
)


class _LowlevelOps(ctypes.Structure):
    _fields_ = [(name, proto if proto is not None else ctypes.c_void_p) for name, proto in _OPS]


assert ctypes.sizeof(_LowlevelOps) == 44 * 8


def _load():
    name = ctypes.util.find_library("fuse3") or "libfuse3.so.3"
    try:
        slow = ctypes.CDLL(name, use_errno=True)   # calls that may block: the GIL is released
    except OSError as e:
        raise SessionError(f"libfuse 3 not found ({e}): apt-get install fuse3") from None
    fast = ctypes.PyDLL(name)                       # per-request calls: the GIL stays held
    slow.fuse_session_new.restype = _p
    slow.fuse_session_new.argtypes = (ctypes.POINTER(_Args), ctypes.POINTER(_LowlevelOps),
                                      _sz, _p)
    slow.fuse_session_mount.argtypes = (_p, _str)
    slow.fuse_session_unmount.argtypes = (_p,)
    slow.fuse_session_unmount.restype = None
    slow.fuse_session_destroy.argtypes = (_p,)
    slow.fuse_session_destroy.restype = None
    slow.fuse_opt_free_args.argtypes = (ctypes.POINTER(_Args),)
    slow.fuse_opt_free_args.restype = None
    fast.fuse_session_fd.argtypes = (_p,)
    fast.fuse_session_exit.argtypes = (_p,)
    fast.fuse_session_exit.restype = None
    fast.fuse_session_exited.argtypes = (_p,)
    fast.fuse_session_receive_buf.argtypes = (_p, ctypes.POINTER(_Buf))
    fast.fuse_session_process_buf.argtypes = (_p, ctypes.POINTER(_Buf))
    fast.fuse_session_process_buf.restype = None
    fast.fuse_reply_err.argtypes = (_p, _int)
    fast.fuse_reply_buf.argtypes = (_p, _p, _sz)
    fast.fuse_reply_write.argtypes = (_p, _sz)
    fast.fuse_reply_attr.argtypes = (_p, _p, ctypes.c_double)
    fast.fuse_reply_entry.argtypes = (_p, ctypes.POINTER(EntryParam))
    fast.fuse_reply_create.argtypes = (_p, ctypes.POINTER(EntryParam), _p)
    fast.fuse_reply_open.argtypes = (_p, _p)
    fast.fuse_reply_statfs.argtypes = (_p, ctypes.POINTER(Statvfs))
    fast.fuse_add_direntry.restype = _sz
    fast.fuse_add_direntry.argtypes = (_p, _p, _sz, _str, ctypes.POINTER(Stat), _i64)
    return slow, fast


_slow = _fast = None


def _lib():
    global _slow, _fast
    if _slow is None:
        _slow, _fast = _load()
    return _slow, _fast


# ---------------------------------------------------------------------- what handlers use
class FileInfo:
    """What open and opendir handlers return: the handle, and how the kernel may cache."""
    __slots__ = ("direct_io", "fh", "keep_cache")

    def __init__(self, fh: int = 0, *, direct_io: bool = False, keep_cache: bool = False):
        self.fh, self.direct_io, self.keep_cache = fh, direct_io, keep_cache


def entry(ino: int, mode: int, *, size: int = 0, nlink: int = 1, uid: int = 0, gid: int = 0,
          blksize: int = 4096, times_ns=(0, 0, 0), timeout: float = 1.0) -> EntryParam:
    """A filled fuse_entry_param (times_ns: atime, mtime, ctime)."""
    e = EntryParam()
    e.ino = ino
    a = e.attr
    a.st_ino, a.st_mode, a.st_nlink, a.st_uid, a.st_gid = ino, mode, nlink, uid, gid
    a.st_size, a.st_blksize, a.st_blocks = size, blksize, (size + 511) // 512
    for ts, ns in zip((a.st_atim, a.st_mtim, a.st_ctim), times_ns):
        ts.tv_sec, ts.tv_nsec = divmod(ns, 1_000_000_000)
    e.attr_timeout = e.entry_timeout = timeout
    return e


def stat_times_ns(st: Stat) -> tuple[int, int, int]:
    return tuple(t.tv_sec * 1_000_000_000 + t.tv_nsec for t in (st.st_atim, st.st_mtim, st.st_ctim))


class Operations:
    """The handlers a file system implements; the session binds only those a subclass
    defines. Every handler is synchronous, runs on the thread that serves the session (the
    Trio thread) and answers by returning, or by raising FUSEError(errno):

        lookup(parent, name) -> EntryParam          getattr(ino, fh) -> EntryParam
        setattr(ino, attr: Stat, to_set, fh) -> EntryParam
        open(ino, flags) -> FileInfo                opendir(ino) -> FileInfo
        read(ino, fh, off, size) -> buffer          write(ino, fh, off, data) -> int
        flush(ino, fh)   fsync(ino, fh, datasync)   release(ino, fh)   releasedir(ino, fh)
        readdir(ino, fh, off) -> iterable of (name, EntryParam, next_off)
        statfs(ino) -> Statvfs                      fallocate(ino, fh, mode, off, length)
        mknod/mkdir/symlink/link -> EntryParam      unlink/rmdir/rename -> None
        create(parent, name, mode, flags) -> (EntryParam, FileInfo)

    `write` gets a numpy uint8 view of the request buffer, valid until it returns; `read`
    may return any C-contiguous buffer (a numpy array is replied from without a copy).
    """


_HANDLED = ("lookup", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "symlink",
            "rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir",
            "readdir", "releasedir", "statfs", "create", "fallocate")


def _fh(fi) -> int:
    return ctypes.c_uint64.from_address(fi + 16).value if fi else 0


def _set_open(fi, info: FileInfo) -> None:
    f = _FileInfo.from_address(fi)
    f.fh = info.fh
    f.direct_io = bool(info.direct_io)
    f.keep_cache = bool(info.keep_cache)


# ---------------------------------------------------------------------- the session
class Session:
    """One FUSE mount served by `ops`: created and mounted by the constructor, served by
    `await serve()` (returns when the file system is unmounted or `terminate()` is
    called), released by `close()`. One session per process at a time is the intended use,
    though nothing here is global."""

    RX_NBYTES = (256 + 2) * 4096 + (1 << 20)      # >= libfuse's bufsize (1 MiB + 4 KiB)
    HOT_S = 0.05              # s after a request during which the next is polled for directly
    POLL_MS = 1               # ms per direct poll, between Trio checkpoints
    CHECKPOINT_EVERY = 64     # requests served back to back between Trio checkpoints

    def __init__(self, ops, mountpoint: str, options=DEFAULT_OPTIONS, rx: np.ndarray | None = None):
        """`rx`: where requests are received (RX_NBYTES, C-contiguous uint8), e.g. a buffer
        the block device does I/O from in place; a fresh one when None."""
        slow, fast = _lib()
        self.ops = ops
        self.mountpoint = os.path.abspath(mountpoint)
        self.conn: dict = {}
        self._exc: BaseException | None = None
        if rx is None:
            rx = np.zeros(self.RX_NBYTES, np.uint8)
        elif rx.dtype != np.uint8 or rx.ndim != 1 or rx.nbytes < self.RX_NBYTES or not rx.flags.c_contiguous:
            raise ValueError(f"rx must be a contiguous uint8 buffer of at least {self.RX_NBYTES} bytes")
        self._rx = rx                                          # requests land here
        self._rx_addr = self._rx.ctypes.data
        self._buf = _Buf(size=0, flags=0, mem=self._rx_addr, fd=-1, pos=0)
        self._bufref = ctypes.byref(self._buf)
        self._table = self._build_ops(fast)
        argv = [b"ox"]
        for opt in sorted(options):
            argv += [b"-o", opt.encode()]
        self._argv = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
        args = _Args(len(argv), self._argv, 0)
        se = slow.fuse_session_new(ctypes.byref(args), ctypes.byref(self._table),
                                   ctypes.sizeof(self._table), None)
        slow.fuse_opt_free_args(ctypes.byref(args))
        if not se:
            raise SessionError(f"fuse_session_new failed (options {sorted(options)})")
        self._se = se
        if slow.fuse_session_mount(se, self.mountpoint.encode()) != 0:
            slow.fuse_session_destroy(se)
            self._se = None
            raise SessionError(f"fuse_session_mount failed at {self.mountpoint}")
        self.fd = fast.fuse_session_fd(se)
        # Never block the Trio thread: a request taken back by the kernel between
        # readiness and the read must give EAGAIN, not a wait for the next one.
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.mounted = True

    # ------------------------------------------------------------------ running
    async def serve(self) -> None:
        """Receive and dispatch requests until the file system is unmounted (or
        terminate()). Handlers run inside process_buf, on this thread.

        A request is read before waiting for one: at QD1 the next one is often there by
        the time the reply is out. While requests keep coming (HOT_S since the last), the
        fd is polled directly for up to POLL_MS at a time, with a Trio checkpoint between
        polls and every CHECKPOINT_EVERY requests; once idle, the task parks in Trio's
        wait_readable. A parking costs a full pass of Trio's run loop, which at QD1 was
        measured to halve 4 KiB IOPS (oxhost.bench.fuse --bindings)."""
        _, fast = _lib()
        se, buf, fd = self._se, self._bufref, self.fd
        receive, process, exited = (fast.fuse_session_receive_buf, fast.fuse_session_process_buf,
                                    fast.fuse_session_exited)
        wait, checkpoint, clock = trio.lowlevel.wait_readable, trio.lowlevel.checkpoint, time.monotonic
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poll = poller.poll
        hot_until, served = 0.0, 0
        eagain, eintr = -errno.EAGAIN, -errno.EINTR
        while not exited(se):
            res = receive(se, buf)
            if res == eagain:
                if clock() < hot_until:
                    if not poll(self.POLL_MS):      # the GIL is released while polling
                        await checkpoint()
                    continue
                try:
                    await wait(fd)
                except trio.ClosedResourceError:
                    break
                continue
            if res == eintr:
                continue
            if res < 0:
                raise OSError(-res, f"fuse_session_receive_buf: {os.strerror(-res)}")
            if res == 0:            # unmounted (ENODEV) or exit requested
                break
            process(se, buf)
            if self._exc is not None:
                exc, self._exc = self._exc, None
                raise exc
            hot_until = clock() + self.HOT_S
            served += 1
            if served % self.CHECKPOINT_EVERY == 0:
                await checkpoint()
        self.mounted = False

    def terminate(self) -> None:
        """Make serve() return (from the Trio thread)."""
        if self._se:
            _lib()[1].fuse_session_exit(self._se)
            trio.lowlevel.notify_closing(self.fd)

    def close(self, unmount: bool = True) -> None:
        """Unmount (unless already unmounted) and destroy the session."""
        se, self._se = self._se, None
        if not se:
            return
        slow, _ = _lib()
        if unmount:
            slow.fuse_session_unmount(se)
        slow.fuse_session_destroy(se)
        self.mounted = False

    # ------------------------------------------------------------------ the ops table
    def _build_ops(self, fast) -> _LowlevelOps:
        ops = self.ops
        table = _LowlevelOps()
        protos = dict(_OPS)
        self._callbacks = []        # the C function objects must outlive the session
        for name in ("init", *_HANDLED):
            if name != "init" and not callable(getattr(ops, name, None)):
                continue
            cb = protos[name](getattr(self, "_" + name)(fast))
            self._callbacks.append(cb)
            setattr(table, name, cb)
        return table

    def _guard(self, fast, what: str, req, exc: BaseException) -> None:
        """A handler failed: answer the request so the kernel never waits forever."""
        if isinstance(exc, FUSEError):
            fast.fuse_reply_err(req, exc.errno)
            return
        fast.fuse_reply_err(req, errno.EIO)
        if isinstance(exc, Exception):
            log.error("%s handler failed: %s: %s", what, type(exc).__name__, exc, exc_info=exc)
        else:                           # KeyboardInterrupt, Cancelled...: re-raised by serve()
            self._exc = exc

    def _init(self, fast):
        def init(userdata, conn):
            c = conn.contents
            # Writes are served from the request buffer: no splicing through a pipe.
            c.want &= ~(_CAP_SPLICE_READ | _CAP_SPLICE_WRITE | _CAP_SPLICE_MOVE)
            self.conn = {"proto": f"{c.proto_major}.{c.proto_minor}", "max_write": c.max_write,
                         "max_readahead": c.max_readahead, "capable": c.capable, "want": c.want}
        return init

    def _simple(self, fast, name, call):
        """A callback whose reply is just success (0) or the handler's error."""
        guard, reply_err = self._guard, fast.fuse_reply_err

        def cb(req, *args):
            try:
                call(*args)
            except BaseException as e:      # noqa: BLE001 - every request gets an answer
                guard(fast, name, req, e)
            else:
                reply_err(req, 0)
        return cb

    def _entry_cb(self, fast, name, call):
        guard, reply = self._guard, fast.fuse_reply_entry

        def cb(req, *args):
            try:
                e = call(*args)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, name, req, exc)
            else:
                reply(req, ctypes.byref(e))
        return cb

    def _lookup(self, fast):
        return self._entry_cb(fast, "lookup", self.ops.lookup)

    def _mknod(self, fast):
        return self._entry_cb(fast, "mknod", self.ops.mknod)

    def _mkdir(self, fast):
        return self._entry_cb(fast, "mkdir", self.ops.mkdir)

    def _symlink(self, fast):
        return self._entry_cb(fast, "symlink", self.ops.symlink)

    def _link(self, fast):
        return self._entry_cb(fast, "link", self.ops.link)

    def _unlink(self, fast):
        return self._simple(fast, "unlink", self.ops.unlink)

    def _rmdir(self, fast):
        return self._simple(fast, "rmdir", self.ops.rmdir)

    def _rename(self, fast):
        return self._simple(fast, "rename", self.ops.rename)

    def _getattr(self, fast):
        guard, reply, op = self._guard, fast.fuse_reply_attr, self.ops.getattr

        def getattr_(req, ino, fi):
            try:
                e = op(ino, _fh(fi))
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "getattr", req, exc)
            else:
                reply(req, ctypes.addressof(e) + _ATTR_OFFSET, e.attr_timeout)
        return getattr_

    def _setattr(self, fast):
        guard, reply, op = self._guard, fast.fuse_reply_attr, self.ops.setattr

        def setattr_(req, ino, attr, to_set, fi):
            try:
                e = op(ino, attr.contents, to_set, _fh(fi))
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "setattr", req, exc)
            else:
                reply(req, ctypes.addressof(e) + _ATTR_OFFSET, e.attr_timeout)
        return setattr_

    def _open_cb(self, fast, name, call):
        guard, reply = self._guard, fast.fuse_reply_open

        def cb(req, ino, fi):
            try:
                info = call(ino, _FileInfo.from_address(fi).flags)
                _set_open(fi, info)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, name, req, exc)
            else:
                reply(req, fi)
        return cb

    def _open(self, fast):
        return self._open_cb(fast, "open", self.ops.open)

    def _opendir(self, fast):
        op = self.ops.opendir
        return self._open_cb(fast, "opendir", lambda ino, flags: op(ino))

    def _create(self, fast):
        guard, reply, op = self._guard, fast.fuse_reply_create, self.ops.create

        def create(req, parent, name, mode, fi):
            try:
                e, info = op(parent, name, mode, _FileInfo.from_address(fi).flags)
                _set_open(fi, info)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "create", req, exc)
            else:
                reply(req, ctypes.byref(e), fi)
        return create

    def _read(self, fast):
        guard, reply_buf, op = self._guard, fast.fuse_reply_buf, self.ops.read
        ndarray, byref, from_buffer = np.ndarray, ctypes.byref, ctypes.c_char.from_buffer

        def read(req, ino, size, off, fi):
            try:
                data = op(ino, _fh(fi), off, size)
                if type(data) is not ndarray and type(data) is not bytes:
                    data = np.frombuffer(data, np.uint8)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "read", req, exc)
                return
            if type(data) is bytes:
                reply_buf(req, data, len(data))
                return
            n = data.nbytes
            if n == 0:
                reply_buf(req, None, 0)
                return
            try:
                ptr = byref(from_buffer(data))          # 4x cheaper than data.ctypes.data
            except (TypeError, ValueError):             # read-only or not contiguous
                data = np.ascontiguousarray(data)
                ptr = data.ctypes.data
            reply_buf(req, ptr, n)
        return read

    def _write(self, fast):
        guard, reply, op = self._guard, fast.fuse_reply_write, self.ops.write
        rx, base, end = self._rx, self._rx_addr, self._rx_addr + self._rx.nbytes

        def write(req, ino, buf, size, off, fi):
            try:
                if base <= buf and buf + size <= end:
                    data = rx[buf - base:buf - base + size]           # no copy
                else:
                    data = np.frombuffer(ctypes.string_at(buf, size), np.uint8)
                n = op(ino, _fh(fi), off, data)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "write", req, exc)
            else:
                reply(req, n)
        return write

    def _flush(self, fast):
        op = self.ops.flush
        return self._simple(fast, "flush", lambda ino, fi: op(ino, _fh(fi)))

    def _release(self, fast):
        op = self.ops.release
        return self._simple(fast, "release", lambda ino, fi: op(ino, _fh(fi)))

    def _releasedir(self, fast):
        op = self.ops.releasedir
        return self._simple(fast, "releasedir", lambda ino, fi: op(ino, _fh(fi)))

    def _fsync(self, fast):
        op = self.ops.fsync
        return self._simple(fast, "fsync", lambda ino, datasync, fi: op(ino, _fh(fi), datasync))

    def _fallocate(self, fast):
        op = self.ops.fallocate
        return self._simple(fast, "fallocate",
                            lambda ino, mode, off, length, fi: op(ino, _fh(fi), mode, off, length))

    def _readdir(self, fast):
        guard, reply_buf, add, op = (self._guard, fast.fuse_reply_buf, fast.fuse_add_direntry,
                                     self.ops.readdir)

        def readdir(req, ino, size, off, fi):
            try:
                out = ctypes.create_string_buffer(size)
                used = 0
                for name, e, next_off in op(ino, _fh(fi), off):
                    n = add(req, ctypes.addressof(out) + used, size - used, name,
                            ctypes.byref(e.attr), next_off)
                    if n > size - used:
                        break
                    used += n
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "readdir", req, exc)
            else:
                reply_buf(req, out, used)
        return readdir

    def _statfs(self, fast):
        guard, reply, op = self._guard, fast.fuse_reply_statfs, self.ops.statfs

        def statfs(req, ino):
            try:
                s = op(ino)
            except BaseException as exc:    # noqa: BLE001
                guard(fast, "statfs", req, exc)
            else:
                reply(req, ctypes.byref(s))
        return statfs
