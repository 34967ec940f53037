"""A plug-in FTL (oxftl API) inside the device: DeviceMedia on VOLT, PluginFtlMode on NVMe."""
from .media import DeviceMedia
from .mode import PluginFtlMode

__all__ = ["DeviceMedia", "PluginFtlMode"]
