"""The device's only door into guest RAM: every access is bounds-checked."""
import numpy as np

from ..wire import PAGE_SIZE


class DmaError(Exception):
    """A DMA address or length falls outside guest RAM (the device turns it into a status)."""


class DmaEngine:
    """Reads and writes guest RAM on the device's behalf, as numpy views (no copies)."""

    def __init__(self, ram: np.ndarray):
        self._ram = ram
        self._size = ram.shape[0]
        self._words = None
        self.bytes_read = 0
        self.bytes_written = 0

    @property
    def ram(self) -> np.ndarray:
        """Guest RAM as bytes, for the device's ring and list views (bounds-checked by the
        caller through `check`)."""
        return self._ram

    @property
    def size(self) -> int:
        return self._size

    @property
    def words(self) -> np.ndarray:
        """Guest RAM as little-endian 64-bit words, to gather PRP and PPA lists at once."""
        if self._words is None:
            self._words = self._ram[: self._size - self._size % 8].view("<u8")
        return self._words

    def check(self, addr: int, nbytes: int) -> None:
        if addr < 0 or nbytes < 0 or addr + nbytes > self._size:
            raise DmaError(f"DMA [0x{addr:x}, +{nbytes}) outside guest RAM of {self._size} bytes")

    def view(self, addr: int, nbytes: int) -> np.ndarray:
        """A live view of guest memory; the caller reads or fills it."""
        self.check(addr, nbytes)
        return self._ram[addr:addr + nbytes]

    def read(self, addr: int, nbytes: int) -> np.ndarray:
        self.bytes_read += nbytes
        return self.view(addr, nbytes)

    def write(self, addr: int, data) -> None:
        data = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        self.view(addr, data.nbytes)[:] = data.reshape(-1).view(np.uint8)
        self.bytes_written += data.nbytes

    def read_u64s(self, addr: int, count: int) -> np.ndarray:
        """Little-endian 64-bit entries (PRP lists, PPA lists)."""
        if addr % 8:
            raise DmaError(f"list pointer 0x{addr:x} is not 8-byte aligned")
        return self.read(addr, 8 * count).view("<u8")

    def gather(self, pages: np.ndarray, offset: int, nbytes: int) -> np.ndarray:
        """Bytes spread over 4 KiB guest pages, as one array (a view when contiguous)."""
        pages = np.asarray(pages, dtype=np.int64)
        if pages.size == 1 or np.all(np.diff(pages) == PAGE_SIZE):
            return self.read(int(pages[0]) + offset, nbytes)
        if np.any(pages % PAGE_SIZE) or np.any(pages < 0) or np.any(pages + PAGE_SIZE > self._size):
            raise DmaError("PRP entry outside guest RAM or not page aligned")
        self.bytes_read += nbytes
        flat = self._ram[: self._size - self._size % PAGE_SIZE].reshape(-1, PAGE_SIZE)
        return flat[pages // PAGE_SIZE].reshape(-1)[offset:offset + nbytes]

    def scatter(self, pages: np.ndarray, offset: int, data: np.ndarray) -> None:
        pages = np.asarray(pages, dtype=np.int64)
        nbytes = data.nbytes
        if pages.size == 1 or np.all(np.diff(pages) == PAGE_SIZE):
            self.write(int(pages[0]) + offset, data)
            return
        if np.any(pages % PAGE_SIZE) or np.any(pages < 0) or np.any(pages + PAGE_SIZE > self._size):
            raise DmaError("PRP entry outside guest RAM or not page aligned")
        buf = np.empty(pages.size * PAGE_SIZE, dtype=np.uint8)
        buf[offset:offset + nbytes] = data.reshape(-1).view(np.uint8)
        flat = self._ram[: self._size - self._size % PAGE_SIZE].reshape(-1, PAGE_SIZE)
        if offset:       # keep the bytes before the offset in the first page
            buf[:offset] = flat[pages[0] // PAGE_SIZE][:offset]
        tail = pages.size * PAGE_SIZE - offset - nbytes
        if tail:
            buf[-tail:] = flat[pages[-1] // PAGE_SIZE][PAGE_SIZE - tail:]
        flat[pages // PAGE_SIZE] = buf.reshape(-1, PAGE_SIZE)
        self.bytes_written += nbytes
