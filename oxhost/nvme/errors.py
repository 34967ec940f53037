"""Errors of the NVMe namespace block device."""
from ..blockdev import BlockDeviceError


class NvmeBlockError(BlockDeviceError):
    """Root: the namespace cannot serve a request as asked."""


class NotAppNvm(NvmeBlockError):
    """The device does not present a plain NVMe namespace of 4 KiB LBAs (e.g. it runs in
    open-channel mode, lnvm > 0)."""


class NvmeIoError(NvmeBlockError):
    """A command completed with a non-zero NVMe status (the status field, DNR included)."""

    def __init__(self, status: int, what: str):
        super().__init__(f"{what}: NVMe status 0x{status:04X}")
        self.status = status
