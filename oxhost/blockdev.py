"""The block device a FUSE volume serves: pblk or a plug-in FTL over open-channel, or the
plain NVMe namespace of a device that runs its own FTL (SPEC 9). Byte-granular helpers sit
on sector-granular I/O; a small measuring surface (stats, ftl_params, block_valid_sectors,
host_buffer) lets tools compare stacks without reaching into any of them.

Errors come in the classes a real disk has, each with the errno the FUSE edge answers:
misuse (EINVAL), media errors (EIO), no space (ENOSPC), read-only media (EROFS). They are
declared at the seam (oxftl.errors), where plug-in FTLs raise them too.
"""
import abc
import typing

import numpy as np

from oxftl.errors import BlockDeviceError, MediaError, NoSpace, ReadOnly

__all__ = ["BlockDevice", "BlockDeviceError", "HostBuffer", "MediaError", "NoSpace", "ReadOnly"]


class HostBuffer(typing.NamedTuple):
    """A host-side write buffer that acknowledges writes before they reach the media, as
    its counters stand now (`BlockDevice.host_buffer()`). Counts are sectors; the last four
    only grow, so the difference of two readings is what happened between them."""
    entries: int            # what the buffer holds at most
    buffered: int           # in it now
    drained: int            # taken out of it and programmed so far: user data, GC copies, padding, trim records
    gc_moved: int           # moved by GC so far (each also drained)
    read: int               # user reads so far ...
    read_media: int         # ... and sectors read from the media so far: the rest came from the buffer


class BlockDevice(abc.ABC):
    """Implementations provide the sector methods; callers use read/write/flush/discard/
    write_zeroes."""

    sector_nbytes: int = 4096
    # Discarded sectors read back as zeros (true of both FTLs: an unmapped sector reads as
    # zeros). A device that cannot promise it sets False: write_zeroes then writes zeros.
    discard_zeroes: bool = True
    _ZERO_CHUNK = 1 << 20

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Exported capacity in bytes."""

    @abc.abstractmethod
    def read_sectors(self, lba: int, count: int) -> np.ndarray:
        """count sectors from lba, as a uint8 array of count * sector_nbytes."""

    @abc.abstractmethod
    def write_sectors(self, lba: int, data: np.ndarray) -> None:
        """Whole sectors starting at lba; data.nbytes is a multiple of sector_nbytes."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Everything written so far is on media when this returns."""

    @abc.abstractmethod
    def discard_sectors(self, lba: int, count: int) -> None:
        """The sectors' contents are no longer needed; later reads return zeros."""

    def read_into(self, lba: int, count: int, out: np.ndarray) -> np.ndarray:
        """read_sectors into `out` (at least count * sector_nbytes bytes); returns the view
        of out holding them. Devices that can read in place override this."""
        data = self.read_sectors(lba, count)
        view = out.reshape(-1).view(np.uint8)[:data.nbytes]
        view[:] = data
        return view

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer I/O can use in place (devices on a DMA bus give one in their
        memory; read_into and write_sectors then move no extra copy)."""
        return np.zeros(nbytes, dtype=np.uint8)

    # ------------------------------------------------------------ what the FTL can say
    # A small surface every block device answers the same way, so tools that measure
    # stacks (`ox compare`) never reach into one FTL's internals.
    def stats(self) -> dict:
        """Counters for reports (JSON-able; each device its own keys)."""
        return {}

    @property
    def read_only(self) -> bool:
        """The FTL has given up writing (its spares are used up): reads work, writes fail
        with ReadOnly. A device-side FTL says so through SMART instead (False here)."""
        return False

    def ftl_params(self) -> dict:
        """What the FTL made of its configuration, JSON-able: `capacity_bytes` always, and
        whatever else the FTL decided (GC policy and thresholds, buffer sizes, LUNs). Read
        once, after opening; cheap enough, not meant for every request."""
        return {"capacity_bytes": self.size}

    def block_valid_sectors(self) -> np.ndarray | None:
        """Valid sectors per (global LUN, block) of the whole device -- an int64 array of
        shape (channels x LUNs, blocks), zero outside the LUNs the FTL uses -- or None when
        this side of the bus cannot say (a namespace whose FTL is in the device, a plug-in
        FTL that keeps its map to itself)."""
        return None

    def host_buffer(self) -> HostBuffer | None:
        """The host-side write buffer's counters now, or None when a write has reached the
        media (or the device) by the time it returns. Cheap: read around every request by
        `ox compare`'s host clock."""
        return None

    def close(self) -> None:
        """Flush and release the device."""
        self.flush()

    # ------------------------------------------------------------ byte-granular
    def _range(self, offset: int, nbytes: int) -> None:
        if offset < 0 or nbytes < 0 or offset + nbytes > self.size:
            raise BlockDeviceError(f"range [{offset}, +{nbytes}) outside the device of {self.size} bytes")

    def read(self, offset: int, nbytes: int, out: np.ndarray | None = None) -> np.ndarray:
        """Bytes at offset; a read past the end is cut short, as a file read is. With `out`
        (room for every sector the range touches) the bytes land there and the result is
        a view of it."""
        if offset < 0 or nbytes < 0:
            raise BlockDeviceError(f"negative offset or length ({offset}, {nbytes})")
        nbytes = max(0, min(nbytes, self.size - offset))
        if nbytes == 0:
            return np.empty(0, dtype=np.uint8)
        s = self.sector_nbytes
        first, last = offset // s, (offset + nbytes - 1) // s
        skip = offset - first * s
        try:
            if out is None:
                data = self.read_sectors(first, last - first + 1)
            else:
                data = self.read_into(first, last - first + 1, out)
        except MediaError as e:
            if e.failed is not None and e.data is not None:
                bad = int(np.argmax(e.failed)) if e.failed.any() else e.failed.size
                e.valid_nbytes = max(0, min(nbytes, bad * s - skip))
                e.data = e.data[skip:skip + nbytes]
            raise
        return data[skip:skip + nbytes]

    def write(self, offset: int, data) -> int:
        """Write bytes at offset, reading back partial sectors at the edges."""
        data = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else data.reshape(-1).view(np.uint8)
        n = data.nbytes
        self._range(offset, n)
        if n == 0:
            return 0
        s = self.sector_nbytes
        if offset % s == 0 and n % s == 0:
            self.write_sectors(offset // s, data)
            return n
        first, last = offset // s, (offset + n - 1) // s
        buf = np.empty((last - first + 1) * s, dtype=np.uint8)
        head = offset - first * s
        if head:
            buf[:s] = self.read_sectors(first, 1)
        tail_end = head + n
        if tail_end % s and (last != first or not head):
            buf[-s:] = self.read_sectors(last, 1)
        buf[head:head + n] = data
        self.write_sectors(first, buf)
        return n

    def discard(self, offset: int, nbytes: int) -> None:
        """Discard the whole sectors inside the range; partial sectors are left alone."""
        self._range(offset, nbytes)
        s = self.sector_nbytes
        first = -(-offset // s)
        end = (offset + nbytes) // s
        if end > first:
            self.discard_sectors(first, end - first)

    def write_zeroes(self, offset: int, nbytes: int) -> None:
        """Make the range read back as zeros. Whole sectors are discarded (unmapped: no
        zero pages reach the media) when the device reads discarded sectors as zeros; the
        partial sectors at the edges, and everything on a device that cannot, are zeroed by
        writing."""
        self._range(offset, nbytes)
        if nbytes == 0:
            return
        s = self.sector_nbytes
        end = offset + nbytes
        first, last = -(-offset // s), end // s          # whole sectors: [first, last)
        if not self.discard_zeroes or last <= first:
            self._write_zeros(offset, end)
            return
        if offset < first * s:
            self._write_zeros(offset, first * s)
        self.discard_sectors(first, last - first)
        if end > last * s:
            self._write_zeros(last * s, end)

    def _write_zeros(self, start: int, end: int) -> None:
        zeros = np.zeros(min(end - start, self._ZERO_CHUNK), dtype=np.uint8)
        for pos in range(start, end, zeros.nbytes):
            self.write(pos, zeros[:min(zeros.nbytes, end - pos)])
