"""PRP walking (NVMe 1.2, 4.3): a transfer's PRP1/PRP2/list -> the guest pages it covers."""
import numpy as np

from ..machine.dma import DmaEngine, DmaError
from ..wire import PAGE_SIZE, Status
from .errors import CommandError

_ENTRIES_PER_LIST = PAGE_SIZE // 8
_STEPS = np.arange(1, _ENTRIES_PER_LIST + 1, dtype=np.uint64) * np.uint64(PAGE_SIZE)


def prp_pages(dma: DmaEngine, prp1: int, prp2: int, nbytes: int) -> tuple[np.ndarray, int]:
    """(page addresses, offset into the first page) for a transfer of nbytes."""
    offset = prp1 % PAGE_SIZE
    if offset % 4:
        raise CommandError(Status.PRP_OFFSET_INVALID, "PRP1 not dword aligned")
    npages = (offset + nbytes + PAGE_SIZE - 1) // PAGE_SIZE
    first = prp1 - offset
    if prp1 >> 63 or (npages == 2 and prp2 >> 63):      # no guest RAM up there (nor int64 room)
        raise CommandError(Status.DATA_XFER_ERROR, "PRP entry beyond guest RAM")
    if npages <= 1:
        return np.array([first], dtype=np.int64), offset
    if npages == 2:
        if prp2 % PAGE_SIZE:
            raise CommandError(Status.PRP_OFFSET_INVALID, "PRP2 entry has an offset")
        return np.array([first, prp2], dtype=np.int64), offset
    # PRP2 points at a list; its last entry chains to the next list when more follow
    pages = [np.array([first], dtype=np.int64)]
    need = npages - 1
    lst = prp2
    try:
        while need:
            if lst % 8:
                raise CommandError(Status.PRP_OFFSET_INVALID, "PRP list pointer misaligned")
            room = _ENTRIES_PER_LIST - (lst % PAGE_SIZE) // 8
            if need <= room:
                pages.append(dma.read_u64s(lst, need).astype(np.int64))
                need = 0
            else:
                ent = dma.read_u64s(lst, room).astype(np.int64)
                pages.append(ent[:-1])
                need -= room - 1
                lst = int(ent[-1])
                if lst % PAGE_SIZE:      # a chain pointer is a PRP entry: no offset (no self-loops)
                    raise CommandError(Status.PRP_OFFSET_INVALID, "PRP list chain pointer has an offset")
    except DmaError as e:
        raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
    out = np.concatenate(pages)
    if np.any(out[1:] % PAGE_SIZE):
        raise CommandError(Status.PRP_OFFSET_INVALID, "PRP list entry has an offset")
    return out, offset


class Transfer:
    """A command's data buffer in guest RAM, read or filled through the DMA engine."""

    __slots__ = ("dma", "pages", "offset", "nbytes", "contiguous")

    def __init__(self, dma: DmaEngine, prp1: int, prp2: int, nbytes: int):
        self.dma = dma
        self.nbytes = nbytes
        offset = prp1 % PAGE_SIZE
        if offset + nbytes <= PAGE_SIZE and not offset % 4 and not prp1 >> 63:
            # one page: the 4 KiB command's case, in plain integers
            self.offset, self.pages, self.contiguous = offset, (prp1 - offset,), True
            try:
                dma.check(prp1, nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
            return
        npages = (offset + nbytes + PAGE_SIZE - 1) // PAGE_SIZE
        first = prp1 - offset
        if npages == 2 and prp2 == first + PAGE_SIZE and not offset % 4 and not prp1 >> 63:
            # two pages, the second right after the first (4 KiB not page aligned)
            self.offset, self.pages, self.contiguous = offset, (first, prp2), True
            try:
                dma.check(prp1, nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
            return
        if (npages > 2 and not offset % 4 and not prp1 >> 63 and not prp2 % 8
                and npages - 1 <= _ENTRIES_PER_LIST - (prp2 % PAGE_SIZE) // 8):
            # one list page, no chain (a PPA command's 256 KiB): when its entries are the
            # pages after PRP1's, the transfer is one extent of guest RAM
            try:
                ent = dma.read_u64s(prp2, npages - 1)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
            if int(ent[0]) == first + PAGE_SIZE and np.array_equal(ent, _STEPS[:npages - 1] + np.uint64(first)):
                self.offset, self.contiguous = offset, True
                self.pages = range(first, first + npages * PAGE_SIZE, PAGE_SIZE)
                try:
                    dma.check(prp1, nbytes)
                except DmaError as e:
                    raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
                return
            dma.bytes_read -= 8 * (npages - 1)            # prp_pages reads (and counts) it again
        p, self.offset = prp_pages(dma, prp1, prp2, nbytes)
        self.pages = p
        self.contiguous = p.size == 1 or bool(np.all(np.diff(p) == PAGE_SIZE))
        try:                 # check every page now: no partial transfer on a bad pointer
            if self.contiguous:
                dma.check(int(p[0]) + self.offset, nbytes)
            else:
                dma.check(int(p.min()), 0)
                dma.check(int(p.max()), PAGE_SIZE)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None

    def read(self) -> np.ndarray:
        """Host -> device bytes (a view of guest RAM when contiguous)."""
        if self.contiguous:
            return self.dma.read(int(self.pages[0]) + self.offset, self.nbytes)
        try:
            return self.dma.gather(self.pages, self.offset, self.nbytes)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None

    def write(self, data: np.ndarray) -> None:
        """Device -> host bytes."""
        if self.contiguous:
            self.dma.write(int(self.pages[0]) + self.offset, data)
            return
        try:
            self.dma.scatter(self.pages, self.offset, data)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None

    def sink(self) -> np.ndarray | None:
        """A writable guest-RAM view to fill in place, or None when pages are scattered."""
        if self.contiguous:
            self.dma.bytes_written += self.nbytes
            return self.dma.view(int(self.pages[0]) + self.offset, self.nbytes)
        return None
