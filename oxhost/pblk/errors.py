"""Errors of the pblk target, each a BlockDeviceError with the errno a real disk gives:
misuse (EINVAL), media errors (EIO), no space (ENOSPC), read-only media (EROFS). Device
statuses (empty page, write or erase failure) are handled inside and never escape raw."""
from ..blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly


class PblkError(BlockDeviceError):
    """Root: the target was used in a way it cannot serve (out of range, misaligned, closed)."""


class PblkNoSpace(PblkError, NoSpace):
    """No line is left to write what the write buffer holds (a flush after the target ran
    out of space; writes themselves turn the target read-only instead, see PblkReadOnly)."""


class PblkIOError(PblkError, MediaError):
    """Sectors of a read could not be read after retries (uncorrectable ECC), or a mapped
    sector reads as never written (a lost write). `failed` marks them per requested sector;
    `data` holds the request with every other sector read."""


class PblkReadOnly(PblkError, ReadOnly):
    """The target went read-only: grown bad blocks (or sectors GC cannot read) ate the spare
    space GC needs, GC could no longer make room, or the device refuses writes (`device`).
    Reads work; writes and discards are refused; stats() names the reason."""

    def __init__(self, msg: str, device: bool = False):
        super().__init__(msg)
        self.device = device


class PblkWrongTarget(PblkError):
    """The media label records a pblk volume on another LUN range than the one asked; the
    message names the range and the flag that opens it. Nothing was written."""


class InvariantError(PblkError):
    """The target's own state contradicts itself (a bug): raised by check()."""
