"""The plain NVMe namespace of AppNVM mode as a block device (SPEC 9)."""
from .blockdev import NvmeBlockDevice
from .errors import NotAppNvm, NvmeBlockError, NvmeIoError

__all__ = ["NotAppNvm", "NvmeBlockDevice", "NvmeBlockError", "NvmeIoError"]
