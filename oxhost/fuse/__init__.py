"""The FUSE front end: the block device as `volume` (plus a `stats` file) through pyfuse3
and Trio, its mount lifecycle, and the ext4 `ox up` puts on top (SPEC 9, 10)."""
from .daemon import serve_foreground, spawn, unmount
from .errors import MountError
from .fs import STATS_INO, VOLUME_INO, VolumeFs
from .mount import Server, serve
from .upper import Upper

__all__ = ["STATS_INO", "VOLUME_INO", "MountError", "Server", "Upper", "VolumeFs", "serve",
           "serve_foreground", "spawn", "unmount"]
