"""Errors of the zoned device library."""
from oxemu.wire import Status, describe_status


class ZnsError(Exception):
    """Root: the zoned device cannot serve the call as asked."""


class NotZoned(ZnsError):
    """The device does not present a zoned namespace (it runs open-channel, AppNVM or a
    device FTL: start it with lnvm=0, spec="zns")."""


class ZoneRangeError(ZnsError):
    """A zone, LBA or length outside the namespace, or not zone-aligned where it must be;
    nothing was sent to the device."""


class ZoneCommandError(ZnsError):
    """A command completed with a non-zero NVMe status (`status`, DNR included)."""

    def __init__(self, status: int, what: str):
        super().__init__(f"{what}: {describe_status(status)}")
        self.status = int(status)

    @property
    def code(self) -> Status | None:
        """The status without DNR, as a Status member when it is one."""
        try:
            return Status(self.status & ~Status.DNR)
        except ValueError:
            return None
