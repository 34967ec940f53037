"""oxftl: the seam every FTL plugs into -- the `Ftl` API, the `Media` it drives, and the
errors both sides of the bus answer. Neither side's implementation lives here (like the
wire formats in oxemu.wire): oxemu runs an Ftl inside the device, oxhost in the host."""
from .errors import BlockDeviceError, MediaError, NoSpace, ReadOnly
from .ftl import Ftl
from .loader import FtlLoadError, load_ftl
from .media import Media, MediaGeometry, MediaUsageError, SectorStatus

__all__ = ["BlockDeviceError", "Ftl", "FtlLoadError", "Media", "MediaError", "MediaGeometry",
           "MediaUsageError", "NoSpace", "ReadOnly", "SectorStatus", "load_ftl"]
