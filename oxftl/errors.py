"""The errors an FTL raises and a block device answers, each with the errno a real disk
gives at the FUSE edge. They live here, at the seam, because the same FTL class runs in
the host (where they reach FUSE) and in the device (where they become NVMe statuses)."""
import errno

import numpy as np


class BlockDeviceError(Exception):
    """Root for block-device errors; on its own, misuse: out-of-range or misaligned requests."""
    errno = errno.EINVAL


class MediaError(BlockDeviceError):
    """Sectors of a read could not be read (uncorrectable media error, or a mapped sector
    the media lost). `failed` is a bool per sector of the request; `data` holds the request's
    bytes, valid wherever `failed` is False. Never answered with zeros: EIO."""
    errno = errno.EIO

    def __init__(self, msg: str, failed: np.ndarray | None = None, data: np.ndarray | None = None):
        super().__init__(msg)
        self.failed = failed
        self.data = data
        self.valid_nbytes = 0       # BlockDevice.read: good bytes before the first bad sector


class NoSpace(BlockDeviceError):
    """The device cannot place the data: its free space is gone (ENOSPC)."""
    errno = errno.ENOSPC


class ReadOnly(BlockDeviceError):
    """The media went read-only (its spare blocks are used up): reads work, writes are
    refused with EROFS."""
    errno = errno.EROFS
