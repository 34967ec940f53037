"""Zoned namespace mode (ZNS): zones on the VOLT media behind an NVMe zoned namespace."""
from .mode import ZnsMode
from .params import ZnsParams

__all__ = ["ZnsMode", "ZnsParams"]
