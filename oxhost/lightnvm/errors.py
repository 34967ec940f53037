"""Errors of the lightnvm library."""
import numpy as np

from oxemu.wire import Status, describe_status

# Which status stands for a call whose addresses failed differently: the worst one.
_SEVERITY = {Status.NVM_EMPTY_PAGE: 1, Status.NVM_FAIL_WRITE: 2, Status.NVM_FAIL_CRC: 3,
             Status.NVM_FAIL_ECC: 4}


def worst_status(statuses: np.ndarray) -> int:
    """The most severe non-zero status of an array (an ECC error outranks an empty page)."""
    codes = np.unique(statuses[statuses != 0]).tolist()
    return max(codes, key=lambda s: (_SEVERITY.get(s, 5), s)) if codes else 0


class LightnvmError(Exception):
    """Root: the library was used in a way the device or geometry cannot serve."""


class AddrError(LightnvmError):
    """An address lies outside the device geometry; nothing was sent to the device.

    `mask` is liblightnvm's address-check bitmask (AddrCheck: ch 1, lun 2, pl 4, blk 8,
    pg 16, sec 32) over all the addresses of the call."""

    def __init__(self, mask: int, what: str):
        super().__init__(f"{what}: address outside the device geometry (check mask 0x{mask:02x})")
        self.mask = mask


class NvmError(LightnvmError):
    """Commands of a call completed with non-zero NVMe statuses.

    `statuses` holds one status per address of the call (0: the address succeeded), exact
    even when one command's addresses failed differently (an empty page and an ECC error).
    `status` is the most severe of them; `failed` is liblightnvm's bitmap of failed
    addresses, bit i for the i-th address. For reads, `data`/`meta` hold what the device
    returned: valid for the addresses that did not fail, zeros for those that did.
    """

    def __init__(self, statuses: np.ndarray, what: str, data=None, meta=None):
        self.statuses = statuses
        self.status = worst_status(statuses)
        self.data = data
        self.meta = meta
        nfail = int(np.count_nonzero(statuses))
        super().__init__(f"{what}: {describe_status(self.status)} "
                         f"({nfail} of {statuses.size} address(es) failed)")

    @property
    def mask(self) -> np.ndarray:
        """Bool per address: it failed."""
        return self.statuses != 0

    @property
    def failed(self) -> int:
        """The failed-address bitmap as one integer (nvm_ret.result)."""
        bits = np.packbits(self.mask, bitorder="little")
        return int.from_bytes(bits.tobytes(), "little")


class NotOpenChannel(LightnvmError):
    """The device on the bus does not present a LightNVM 1.2 open-channel namespace."""
