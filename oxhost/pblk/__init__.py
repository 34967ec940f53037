"""pblk: the Linux 4.12 physical block device target as a host FTL over an open-channel
device (SPEC 9): write buffer, L2P, lines, striping writer, GC, rate limiter, recovery."""
from .core import Pblk
from .errors import PblkError, PblkIOError, PblkNoSpace

__all__ = ["Pblk", "PblkError", "PblkIOError", "PblkNoSpace"]
