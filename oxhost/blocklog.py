"""The volume's block log: what the FUSE daemon appends for every request that reaches the
block device (`ox mount --write-log`, lab use). `ox torture --ext4` checks a recovered
volume against it (oxhost.torture.flushmodel) and replays a round from it
(oxhost.torture.replay); the FUSE edge only writes it.

Records: REC (op, offset, length), followed by the bytes for WRITE. Appended with one
write(2) each (O_APPEND), by one daemon at a time.
"""
import struct

REC = struct.Struct("<cQI")
WRITE, ZERO, FLUSH = b"W", b"Z", b"F"
FAILED = b"X"                        # the write or zeroing just before failed
READ, BACKGROUND = b"R", b"B"        # not part of the contract: they let a round be replayed


class BlockLog:
    """The daemon's side: VolumeFs calls write/zero before doing them (a write that fails
    may still have reached the media in part) and flush after a flush succeeded."""

    def __init__(self, path: str):
        self._f = open(path, "ab", buffering=0)

    def write(self, offset: int, data) -> None:
        self._f.write(REC.pack(WRITE, offset, len(data)) + bytes(data))

    def zero(self, offset: int, nbytes: int) -> None:
        self._f.write(REC.pack(ZERO, offset, nbytes))

    def flush(self) -> None:
        self._f.write(REC.pack(FLUSH, 0, 0))

    def failed(self) -> None:
        self._f.write(REC.pack(FAILED, 0, 0))

    def read(self, offset: int, nbytes: int) -> None:
        self._f.write(REC.pack(READ, offset, nbytes))

    def background(self) -> None:
        self._f.write(REC.pack(BACKGROUND, 0, 0))

    def close(self) -> None:
        self._f.close()
