"""Zoned namespaces in the host: a libzbd-style library (ZonedDevice) over the bus, and the
FTL API's Media over zones (ZoneMedia) so any FTL runs on a ZNS device."""
from .device import ZbdInfo, Zone, ZonedDevice
from .errors import NotZoned, ZnsError, ZoneCommandError, ZoneRangeError
from .media import ZoneMedia

__all__ = ["NotZoned", "ZbdInfo", "Zone", "ZoneCommandError", "ZoneMedia", "ZoneRangeError", "ZnsError",
           "ZonedDevice"]
