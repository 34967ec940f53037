"""The FUSE front end: the block device as `volume` (plus a `stats` file) through our ctypes
binding of libfuse's low-level API driven by Trio, its mount lifecycle, and the ext4
`ox up` puts on top (SPEC 9, 10)."""
from .daemon import serve_foreground, spawn, unmount
from .errors import MountError
from .fs import STATS_INO, VOLUME_INO, VolumeFs
from .lowlevel import FUSEError, Session, SessionError
from .mount import Server, serve
from .upper import Upper

__all__ = ["STATS_INO", "VOLUME_INO", "FUSEError", "MountError", "Server", "Session",
           "SessionError", "Upper", "VolumeFs", "serve", "serve_foreground", "spawn", "unmount"]
