"""Errors of the pblk target: misuse of the block device and conditions it cannot serve.
Device statuses (empty page, write or erase failure) are handled inside and never escape."""
from ..blockdev import BlockDeviceError, MediaError, NoSpace


class PblkError(BlockDeviceError):
    """Root: the target was used in a way it cannot serve (out of range, misaligned, closed)."""


class PblkNoSpace(PblkError, NoSpace):
    """Garbage collection cannot free a line: more valid data than the media can hold
    (the LUN range has too many bad blocks for its exported capacity)."""


class PblkIOError(PblkError, MediaError):
    """A media read failed beyond repair (uncorrectable ECC): the data of those sectors is lost."""
