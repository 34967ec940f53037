"""The reference FUSE file systems the benchmarks measure our volume against, each on every
candidate Python binding: `null` (reads are zeros, writes are dropped) and `store` (writes
are copied into anonymous memory, reads are served from it: the fair baseline).
Each one is a root directory holding a single `volume` file of a fixed size, served by one
thread, with the request handlers calling plain synchronous code, as `ox mount` does.

Bindings: `lowlevel` (oxhost.fuse.lowlevel: our ctypes binding of libfuse's low-level
API, driven by Trio: what `ox mount` uses), `pyfuse3` (Cython, low-level API, Trio) and
`mfusepy` (ctypes, libfuse's high-level path API, its own single-threaded loop). pyfuse3
and mfusepy are not dependencies of the project: a binding that is not installed is
reported as such and skipped.

    python -m oxhost.bench.fusefs BINDING KIND MOUNTPOINT [--size BYTES]
"""
import argparse
import errno
import mmap
import os
import signal
import stat

import numpy as np

BINDINGS = ("lowlevel", "pyfuse3", "mfusepy")
KINDS = ("null", "store")
ROOT, VOLUME = 1, 2
_ZEROS = np.zeros(4 << 20, np.uint8)


def available(binding: str) -> bool:
    if binding == "lowlevel":
        return True
    try:
        __import__(binding)
    except ImportError:
        return False
    return True


class _Backing:
    """What a file system does with the volume's bytes: `null` drops, `store` keeps."""

    def __init__(self, kind: str, size: int):
        self.kind, self.size = kind, size
        if kind == "store":     # anonymous memory, touched only where written
            self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            self.mem = np.frombuffer(self._map, np.uint8)

    def read(self, off: int, size: int) -> np.ndarray:
        size = max(0, min(size, self.size - off))
        if self.kind == "null":
            return _ZEROS[:size]
        return self.mem[off:off + size]

    def write(self, off: int, data) -> int:
        n = len(data)
        if self.kind == "store":
            self.mem[off:off + n] = np.frombuffer(data, np.uint8) \
                if not isinstance(data, np.ndarray) else data
        return n


# ---------------------------------------------------------------------- lowlevel
def serve_lowlevel(kind: str, mountpoint: str, size: int) -> None:
    import trio

    from oxhost.fuse import lowlevel as ll

    uid, gid = os.getuid(), os.getgid()
    back = _Backing(kind, size)
    attrs = {ROOT: ll.entry(ROOT, stat.S_IFDIR | 0o700, nlink=2, uid=uid, gid=gid, timeout=300),
             VOLUME: ll.entry(VOLUME, stat.S_IFREG | 0o600, size=size, uid=uid, gid=gid,
                              timeout=300)}

    class Fs(ll.Operations):
        def lookup(self, parent, name):
            if parent != ROOT or name != b"volume":
                raise ll.FUSEError(errno.ENOENT)
            return attrs[VOLUME]

        def getattr(self, ino, fh):
            try:
                return attrs[ino]
            except KeyError:
                raise ll.FUSEError(errno.ENOENT) from None

        def opendir(self, ino):
            return ll.FileInfo(ino)

        def readdir(self, ino, fh, off):
            return [(b"volume", attrs[VOLUME], 1)] if off == 0 else []

        def releasedir(self, ino, fh):
            pass

        def open(self, ino, flags):
            return ll.FileInfo(ino, keep_cache=True)

        def read(self, ino, fh, off, size):
            return back.read(off, size)

        def write(self, ino, fh, off, data):
            return back.write(off, data)

        def fsync(self, ino, fh, datasync):
            pass

        def flush(self, ino, fh):
            pass

        def release(self, ino, fh):
            pass

    async def main():
        opts = set(ll.DEFAULT_OPTIONS) | {f"fsname=ox{kind}", f"subtype=ox{kind}", "noatime"}
        session = ll.Session(Fs(), mountpoint, opts)
        try:
            await session.serve()
        finally:
            session.close(unmount=False)
    trio.run(main)


# ---------------------------------------------------------------------- pyfuse3
def serve_pyfuse3(kind: str, mountpoint: str, size: int) -> None:
    import pyfuse3
    import trio

    uid, gid = os.getuid(), os.getgid()
    back = _Backing(kind, size)

    def attr(ino):
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.st_uid, a.st_gid = uid, gid
        a.attr_timeout = a.entry_timeout = 300.0
        if ino == ROOT:
            a.st_mode, a.st_nlink = stat.S_IFDIR | 0o700, 2
        else:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o600, 1, size
        return a

    class Fs(pyfuse3.Operations):
        async def getattr(self, inode, ctx=None):
            if inode not in (ROOT, VOLUME):
                raise pyfuse3.FUSEError(errno.ENOENT)
            return attr(inode)

        async def lookup(self, parent_inode, name, ctx=None):
            if parent_inode != ROOT or name != b"volume":
                raise pyfuse3.FUSEError(errno.ENOENT)
            return attr(VOLUME)

        async def opendir(self, inode, ctx):
            return inode

        async def readdir(self, fh, start_id, token):
            if start_id == 0:
                pyfuse3.readdir_reply(token, b"volume", attr(VOLUME), 1)

        async def releasedir(self, fh):
            pass

        async def open(self, inode, flags, ctx):
            return pyfuse3.FileInfo(fh=inode, keep_cache=True)

        async def read(self, fh, off, size):
            return back.read(off, size)

        async def write(self, fh, off, buf):
            return back.write(off, buf)

        async def fsync(self, fh, datasync):
            pass

        async def flush(self, fh):
            pass

        async def release(self, fh):
            pass

    async def main():
        opts = set(pyfuse3.default_options) | {f"fsname=ox{kind}", f"subtype=ox{kind}", "noatime"}
        pyfuse3.init(Fs(), mountpoint, opts)
        try:
            await pyfuse3.main(1, 1)        # one worker, as `ox mount` ran on pyfuse3
        finally:
            pyfuse3.close(unmount=False)
    trio.run(main)


# ---------------------------------------------------------------------- mfusepy
def serve_mfusepy(kind: str, mountpoint: str, size: int) -> None:
    import mfusepy

    uid, gid = os.getuid(), os.getgid()
    back = _Backing(kind, size)
    root = {"st_mode": stat.S_IFDIR | 0o700, "st_nlink": 2, "st_uid": uid, "st_gid": gid}
    vol = {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": size, "st_uid": uid,
           "st_gid": gid}

    class Fs(mfusepy.Operations):
        use_ns = True

        def getattr(self, path, fh=None):
            if path == "/":
                return root
            if path == "/volume":
                return vol
            raise mfusepy.FuseOSError(errno.ENOENT)

        def readdir(self, path, fh):
            return [".", "..", "volume"]

        def open(self, path, flags):
            return VOLUME

        def read(self, path, size, offset, fh):
            return back.read(offset, size).tobytes()      # mfusepy copies bytes out

        def write(self, path, data, offset, fh):
            return back.write(offset, data)

        def fsync(self, path, datasync, fh):
            return 0

        def flush(self, path, fh):
            return 0

        def release(self, path, fh):
            return 0

    mfusepy.FUSE(Fs(), mountpoint, foreground=True, nothreads=True, fsname=f"ox{kind}",
                 subtype=f"ox{kind}", noatime=True, default_permissions=True, kernel_cache=True,
                 entry_timeout=300, attr_timeout=300)


def serve(binding: str, kind: str, mountpoint: str, size: int) -> None:
    """Serve until unmounted (fusermount3 -u); SIGINT is left to the unmount."""
    if binding not in BINDINGS or kind not in KINDS:
        raise ValueError(f"unknown binding {binding!r} or kind {kind!r}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    {"lowlevel": serve_lowlevel, "pyfuse3": serve_pyfuse3, "mfusepy": serve_mfusepy}[binding](
        kind, mountpoint, size)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binding", choices=BINDINGS)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("mountpoint")
    p.add_argument("--size", type=int, default=3_435_134_976)
    a = p.parse_args(argv)
    serve(a.binding, a.kind, a.mountpoint, a.size)


if __name__ == "__main__":
    main()
