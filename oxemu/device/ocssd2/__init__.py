"""Open-Channel SSD 2.0 mode (spec="2.0", lnvm > 0): chunks, vector commands, the chunk
information and notification logs, on the same VOLT media as the 1.2 mode."""
from .mode import Ocssd2Mode

__all__ = ["Ocssd2Mode"]
