"""The device-mode seam: what the controller asks of the mode it runs (FEMU's ops table).

A mode answers identify, executes I/O commands, adds its own admin commands and log
pages, persists on reset and shutdown, reports its counters and whether it went
read-only. Open-channel pass-through (lnvm/), the AppNVM device FTL (appnvm/), a plug-in
FTL in the device (plugin/) and the unpowered state are its implementations; the
controller and the admin command set know nothing else of them.
"""
import abc

import numpy as np

from ..wire import CSI_NVM, MediaMode


class DeviceMode(abc.ABC):
    """One device mode. `timing` is the media's timing model (the controller's clock)."""

    #: what the mode writes on the media (its label's mode)
    media_mode: MediaMode

    def __init__(self, timing):
        self.timing = timing
        self.bytes_read = 0          # host data moved, for SMART's data units
        self.bytes_written = 0

    # ------------------------------------------------------------ identify
    @abc.abstractmethod
    def identify_controller(self, serial: str) -> bytes:
        """The 4096-byte identify controller structure (CNS 1)."""

    @abc.abstractmethod
    def identify_namespace(self) -> bytes:
        """The 4096-byte identify namespace structure of namespace 1 (CNS 0)."""

    #: the I/O command set of namespace 1 (wire.zns.CSI_*): NVM unless the mode says
    csi: int = CSI_NVM

    def identify_cs(self, cns: int, csi: int) -> bytes | None:
        """The 4096-byte I/O command set specific identify structure (CNS 0x05 namespace,
        0x06 controller) of command set `csi` other than NVM; None: not supported."""
        return None

    # ------------------------------------------------------------ commands
    def admin_commands(self) -> dict:
        """The mode's own admin opcodes: {opcode: handler(cmd) -> (status, result)}."""
        return {}

    def log_pages(self) -> dict:
        """The mode's own log pages: {log id: callable() -> bytes}."""
        return {}

    @abc.abstractmethod
    def io(self, cmd, arrival_ns: int):
        """Execute one I/O command: (status, result, completion time in ns)."""

    def io_run(self, ents, i: int, arrival_ns: int):
        """Several I/O commands rung in together, starting at SQE record i: (k, (status,
        result, done) arrays) when the mode ran k of them at once exactly as `io` would,
        or (k, None) for k commands to run one by one. The default runs them all alone."""
        return len(ents) - i, None

    def idle(self) -> bool:
        """The host is idle (OX vendor admin 0xC2): one slice of background work; True
        while more is pending."""
        return False

    # ------------------------------------------------------------ power
    @abc.abstractmethod
    def reset(self) -> None:
        """Controller reset (CC.EN 1 -> 0): what the mode holds goes to the media file."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Controller shutdown (CC.SHN): a clean stop of the mode."""

    # ------------------------------------------------------------ state and reports
    @property
    def read_only(self) -> bool:
        """The mode refuses writes for good (spares used up); SMART says so."""
        return False

    def stats(self) -> dict:
        """The mode's counters (lab instrument)."""
        return {}

    def block_valid_sectors(self) -> np.ndarray | None:
        """Valid sectors per (global LUN, block) when the device maps data (lab instrument)."""
        return None
