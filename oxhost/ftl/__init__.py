"""Plug-in FTLs in the host: any oxftl.Ftl over open-channel media, served as a block device."""
from .blockdev import FtlBlockDevice, FtlTargetError
from .media import HostMedia

__all__ = ["FtlBlockDevice", "FtlTargetError", "HostMedia"]
