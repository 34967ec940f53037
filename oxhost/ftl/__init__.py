"""Plug-in FTLs in the host: any oxftl.Ftl over open-channel media (1.2 or 2.0), served as a block device."""
from .blockdev import FtlBlockDevice, FtlTargetError
from .chunkmedia import ChunkMedia
from .media import HostMedia

__all__ = ["ChunkMedia", "FtlBlockDevice", "FtlTargetError", "HostMedia"]
