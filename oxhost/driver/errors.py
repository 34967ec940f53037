"""Errors of the user-space NVMe driver."""


class DriverError(Exception):
    """Root of the driver's errors: the host cannot talk to the controller as asked."""


class ControllerFatal(DriverError):
    """CSTS.CFS is set or the controller never became ready."""


class CommandTimeout(DriverError):
    """No completion arrived within the command timeout."""


class OutOfDmaMemory(DriverError):
    """Guest RAM has no free extent large enough for a DMA buffer."""
