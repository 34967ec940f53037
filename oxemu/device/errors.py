"""Device-internal failure signal: unwinds a command handler into an NVMe status."""


class CommandError(Exception):
    """Raised inside the device to complete the current command with `status`.

    Never crosses the bus: the controller catches it and posts the status.
    """

    def __init__(self, status: int, why: str = "", failed: int = 0):
        super().__init__(why or f"status 0x{status:04x}")
        self.status = int(status)
        self.failed = failed
