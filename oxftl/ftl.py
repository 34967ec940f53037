"""The FTL API: what an FTL implements to be mounted, tortured and compared on either side
of the bus. docs/ftl-api.md states the contract in full; the short of it is here."""
import abc

import numpy as np

from .media import Media


class Ftl(abc.ABC):
    """A flash translation layer: 4 KiB logical sectors (LBAs) onto a `Media`.

    The framework checks every request before it reaches the FTL (0 <= lba, lba + count <=
    capacity, whole sectors), so the methods see only valid ranges. What each must do:

    - `open()`: the media is blank (every page EMPTY), or holds this FTL's data as a clean
      `close()` or a power cut left it -- a cut may strike at any media operation, inside
      an earlier `open()` too; the program it interrupted reads UNREADABLE and nothing
      after it happened. Format or recover, and set `capacity` (sectors exported): the
      same on every open of the same media.
    - `read(lba, count, out)`: each sector's newest version; never-written and trimmed
      sectors read as zeros. A sector that cannot be read raises MediaError with `failed`
      marking it (and `data` = out, good wherever not failed): never zeros in its place.
    - `write(lba, data)`: accepted once it returns (it may sit in a volatile buffer).
      `data` may be reused by the caller afterwards: copy what you keep.
    - `trim(lba, count)`: the sectors read as zeros from now on.
    - `flush()`: every write and trim accepted before it survives a power cut: after the
      next `open()` each sector reads as its last flushed version or one written since,
      never older, never garbage, never an error.
    - `close()`: a clean stop (at least a flush); the object is not used again.
    - `stats()`: counters for reports (JSON-able). Media-level counts (erases, pages
      programmed, reads) are taken by the media itself.
    - `background()`: called while the volume is idle; do a bounded slice of deferred work
      (GC) and return True while more is pending.
    - `spare_blocks()` (optional): blocks the FTL can still lose before it goes read-only.

    Raise NoSpace when a write cannot be placed even after collecting, ReadOnly once the
    FTL has given up writing (spares used up: reads still work). Any other exception is a
    bug: the request fails with EIO (host) or an internal-error status (device).
    """

    #: recorded in the media label; media written by another FTL (or another version of
    #: this one) is refused before anything is written. Default: the class name.
    name: str | None = None
    version: int = 1
    #: set True once the FTL has given up writing (spares used up): SMART and stats say so
    read_only: bool = False

    def __init__(self, media: Media):
        self.media = media
        self.capacity = 0

    @classmethod
    def ftl_name(cls) -> str:
        return cls.name or cls.__name__

    @abc.abstractmethod
    def open(self) -> None:
        """Format blank media or recover from what the media holds; set `capacity`."""

    @abc.abstractmethod
    def read(self, lba: int, count: int, out: np.ndarray) -> None:
        """Fill out[:count * sector_nbytes] with sectors lba .. lba + count - 1."""

    @abc.abstractmethod
    def write(self, lba: int, data: np.ndarray) -> None:
        """Accept data (whole sectors) at lba."""

    @abc.abstractmethod
    def trim(self, lba: int, count: int) -> None:
        """Deallocate sectors: they read as zeros from now on."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Make everything accepted so far survive a power cut."""

    def close(self) -> None:
        """Clean stop."""
        self.flush()

    def stats(self) -> dict:
        return {}

    def background(self) -> bool:
        """One bounded slice of idle-time work; True while more is pending."""
        return False

    def spare_blocks(self) -> int | None:
        """How many more blocks the FTL can lose (retired after failures) before it goes
        read-only; None when it cannot say. `ox torture --faults` spends its program and
        erase failures against it (an FTL that cannot say gets none)."""
        return None
