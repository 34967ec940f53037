"""Open-channel mode (lnvm > 0): LightNVM 1.2 physical commands passed to VOLT with the NAND
rules enforced; the host places data (SPEC 5, 6)."""
from .mode import LnvmMode

__all__ = ["LnvmMode"]
