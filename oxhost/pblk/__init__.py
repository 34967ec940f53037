"""pblk: the Linux 4.12 physical block device target as a host FTL over an open-channel
device (SPEC 9): write buffer, L2P, lines, striping writer, GC, rate limiter, recovery,
durable discards and one media-error policy."""
from .core import Pblk
from .params import PblkParams
from .sysfs import PblkSysfs
from .errors import (
           InvariantError,
           PblkError,
           PblkIOError,
           PblkNoSpace,
           PblkReadOnly,
           PblkWrongTarget,
)

__all__ = ["InvariantError", "Pblk", "PblkError", "PblkIOError", "PblkNoSpace", "PblkParams", "PblkReadOnly",
           "PblkSysfs", "PblkWrongTarget"]
