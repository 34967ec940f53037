"""Errors of the NVMe namespace block device: each NVMe status class maps onto the block
device's error class with the errno a real disk gives."""
from oxemu.wire import Status, describe_status

from ..blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly


class NvmeBlockError(BlockDeviceError):
    """Root: the namespace cannot serve a request as asked."""


class NotAppNvm(NvmeBlockError):
    """The device does not present a plain NVMe namespace of 4 KiB LBAs (e.g. it runs in
    open-channel mode, lnvm > 0)."""


class NvmeIoError(NvmeBlockError):
    """A command completed with a non-zero NVMe status (the status field, DNR included)."""

    def __init__(self, status: int, what: str):
        super().__init__(f"{what}: {describe_status(status)}")
        self.status = status


class NvmeMediaError(NvmeIoError, MediaError):
    """Unrecovered read or write fault: EIO."""

    def __init__(self, status: int, what: str, failed=None, data=None):
        NvmeIoError.__init__(self, status, what)
        self.failed = failed
        self.data = data
        self.valid_nbytes = 0


class NvmeNoSpace(NvmeIoError, NoSpace):
    """Capacity exceeded: the device FTL has no room left (ENOSPC)."""


class NvmeReadOnly(NvmeIoError, ReadOnly):
    """The namespace is write protected: the device's spare blocks are used up (EROFS)."""


_BY_STATUS = {Status.UNRECOVERED_READ: NvmeMediaError, Status.WRITE_FAULT: NvmeMediaError,
              Status.CAP_EXCEEDED: NvmeNoSpace, Status.NS_WRITE_PROTECTED: NvmeReadOnly}


def io_error(status: int, what: str) -> NvmeIoError:
    """The error of the class a status belongs to (DNR ignored)."""
    return _BY_STATUS.get(status & ~Status.DNR, NvmeIoError)(status, what)
