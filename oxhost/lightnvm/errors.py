"""Errors of the lightnvm library."""


class LightnvmError(Exception):
    """Root: the library was used in a way the device or geometry cannot serve."""


class NvmError(LightnvmError):
    """A command completed with a non-zero NVMe status.

    `status` is the status field (e.g. 0x42FF, a read of an empty page); `failed` is the
    bitmap of failed addresses, bit i for the i-th address of the call. For reads,
    `data`/`meta` hold what the device returned for the addresses that did not fail.
    """

    def __init__(self, status: int, failed: int, what: str, data=None, meta=None):
        super().__init__(f"{what}: NVMe status 0x{status:04X}, failed address bitmap 0x{failed:x}")
        self.status = status
        self.failed = failed
        self.data = data
        self.meta = meta


class NotOpenChannel(LightnvmError):
    """The device on the bus does not present a LightNVM 1.2 open-channel namespace."""
