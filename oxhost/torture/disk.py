"""Disk files of a torture campaign: where they live, and copies that stay cheap.

A dry run or an exhaustive round starts from a copy of a disk file, thousands of times
per campaign. A disk file is sparse (35 MiB of address space on the torture geometry, a
few MiB to all of it written), so only its written extents are copied, and a copy made
over an earlier copy of the same size rewrites that file in place (its holes punched
where the source has holes): the page cache keeps its pages, and this VM backs pages no
process has touched at a few hundred MiB/s. The files live in /dev/shm (memory) when it
is there: a campaign stops the media thousands of times, and each stop syncs the file.
"""
import ctypes
import ctypes.util
import os
import tempfile

_CHUNK = 1 << 20
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_SHM = "/dev/shm"

_libc = None


def _punch(fd: int, off: int, length: int) -> None:
    """Make [off, off + length) of fd a hole (reads as zeros)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
    if _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, off, length) != 0:
        zeros = bytes(min(_CHUNK, length))           # no hole punching here: write zeros
        pos = off
        while pos < off + length:
            pos += os.pwrite(fd, zeros[:min(_CHUNK, off + length - pos)], pos)


def _extents(fd: int, size: int):
    """(start, end, is_data) runs covering [0, size) of fd."""
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:                              # ENXIO: only a hole is left
            start = size
        if start > off:
            yield off, start, False
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end, True
        off = end


def copy_sparse(src: str, dst: str) -> None:
    """dst becomes a byte-identical copy of src, with src's holes left as holes."""
    in_place = os.path.exists(dst) and os.path.getsize(dst) == os.path.getsize(src)
    with open(src, "rb") as fi, open(dst, "r+b" if in_place else "wb") as fo:
        sfd, dfd = fi.fileno(), fo.fileno()
        size = os.fstat(sfd).st_size
        if not in_place:
            fo.truncate(size)
        for start, end, data in _extents(sfd, size):
            if not data:
                if in_place:
                    _punch(dfd, start, end - start)
                continue
            pos = start
            while pos < end:
                n = os.copy_file_range(sfd, dfd, min(_CHUNK, end - pos), pos, pos)
                if n <= 0:
                    raise OSError(f"copying {src} to {dst}: short copy at {pos}")
                pos += n


def scratch_dir(prefix: str = "ox-torture-") -> str:
    """A new temporary directory, in /dev/shm when there is one that takes files."""
    where = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix=prefix, dir=where)
