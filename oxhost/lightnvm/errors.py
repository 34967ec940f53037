"""Errors of the lightnvm library."""


class LightnvmError(Exception):
    """Root: the library was used in a way the device or geometry cannot serve."""


class NvmError(LightnvmError):
    """A command completed with a non-zero NVMe status.

    `status` is the status field of the first failing command (e.g. 0x42FF, a read of an
    empty page); `failed` is the bitmap of failed addresses, bit i for the i-th address of
    the call. A call split into several commands lists each failing one in `statuses` as
    (first address index, address count, status, that command's bitmap), so mixed
    failures (empty pages and ECC errors) can be told apart. For reads, `data`/`meta` hold
    what the device returned for the addresses that did not fail.
    """

    def __init__(self, status: int, failed: int, what: str, data=None, meta=None, statuses=()):
        super().__init__(f"{what}: NVMe status 0x{status:04X}, failed address bitmap 0x{failed:x}")
        self.status = status
        self.failed = failed
        self.data = data
        self.meta = meta
        self.statuses = list(statuses) or [(0, failed.bit_length(), status, failed)]


class NotOpenChannel(LightnvmError):
    """The device on the bus does not present a LightNVM 1.2 open-channel namespace."""
