"""The errors of the FUSE front end, raised before or around serving, never from handlers."""


class MountError(Exception):
    """A volume cannot be mounted, served or unmounted: missing or busy mount point, no
    /dev/fuse, a tool missing, the serving process failed, an ext4 on top is busy. The
    message is one line meant for the user."""
