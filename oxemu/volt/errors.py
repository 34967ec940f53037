"""VOLT's one exception: the media file cannot be used as asked."""


class StoreError(Exception):
    """The disk file cannot be used: not an OX disk file, corrupt or of another version,
    another geometry, holding another device mode's data, locked by another device, or
    an I/O error. Raised before anything is written to the file."""
