"""Media memory faulted in ahead of the writer, on a thread of its own (SPEC 3, 11).

Data lands on media pages no process has touched (a log-structured FTL writes to fresh
pages until the media has been used once), and the first touch of a page costs a page
fault -- in a sparse disk file also the file system's block allocation, on a VM a
hypervisor fault. Left to the program path, those faults are most of a write's time.
A block is therefore populated (MADV_POPULATE_WRITE) when its first page is programmed --
and, in a disk file, already when it is erased: a pblk line is erased ahead of its use --
by a worker thread: the system call runs without the GIL, so on a machine with a second
core the faults are taken beside the writer instead of in its way. Blocks being written
are populated a chunk at a time, round robin, in the order a striping writer needs them;
what the writer reaches first it faults in itself, as before.

Memory and disk in use still grow with the blocks written to (or erased ahead of a write:
one pblk line), never with capacity. Blocks whose first page was programmed are fully
populated by the time the media closes, as the program path used to do itself.
"""
import ctypes
import ctypes.util
import logging
import mmap
import threading
from collections import deque

import numpy as np

log = logging.getLogger(__name__)

MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)   # Linux 5.14

_UNTOUCHED, _QUEUED, _DONE = 0, 1, 2

_libc = None


def _madvise():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        lib.madvise.restype = ctypes.c_int
        _libc = lib
    return _libc.madvise


class Populator:
    """Populates blocks of one mapping: `extents(block)` gives the (offset, length) ranges
    of a block (page aligned, inside the mapping at `address`): its data, then its OOB.

    Blocks being written are populated a chunk at a time, round robin: a striping writer
    (a pblk line, AppNVM's units over every LUN) fills all its open blocks a page at a time,
    so the first pages of every block are needed long before the last pages of any."""

    CHUNK = 512 << 10             # data bytes per call: 16 pages on both planes by default

    def __init__(self, address: int, nblocks: int, extents):
        self._address = address
        self._extents = extents
        self._state = np.zeros(nblocks, dtype=np.uint8)
        self._needed = set()                # blocks programmed before they were populated
        self._active: deque = deque()       # [block, next data offset] being populated
        self._ahead: deque[int] = deque()
        self._cv = threading.Condition()
        self._thread = None
        self._stop = False
        self.supported = True
        self.calls = 0

    # ------------------------------------------------------------------ requests
    def ahead(self, blocks) -> None:
        """Blocks that will be written (erased now): populate them when there is time."""
        self._queue(blocks, urgent=False)

    def now(self, blocks) -> None:
        """Blocks whose first page is being programmed: populated next, and complete by close."""
        for b in blocks:
            if self._state[b] != _DONE:
                self._needed.add(b)
        self._queue(blocks, urgent=True)

    def _queue(self, blocks, urgent: bool) -> None:
        if not self.supported:
            return
        state = self._state
        if all(state[b] == _DONE for b in blocks):        # a reused block: nothing to wake the worker for
            return
        with self._cv:
            queued = False
            for b in blocks:
                st = state[b]
                if st == _DONE or (st == _QUEUED and not urgent):
                    continue
                if st == _QUEUED:                         # waiting ahead: make it active
                    try:
                        self._ahead.remove(b)
                    except ValueError:
                        continue                          # already active
                state[b] = _QUEUED
                queued = True
                if urgent:
                    self._active.append([b, 0])
                else:
                    self._ahead.append(b)
            if self._thread is None and (self._active or self._ahead):
                self._thread = threading.Thread(target=self._work, name="volt-populate", daemon=True)
                self._thread.start()
            if queued:
                self._cv.notify()

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        madvise = _madvise()
        while True:
            with self._cv:
                while not (self._active or self._ahead or self._stop):
                    self._cv.wait()
                if self._stop:
                    return
                if not self._active:
                    self._active.append([self._ahead.popleft(), 0])
                item = self._active.popleft()
            b, at = item
            (doff, dlen), (ooff, olen) = self._extents(b)
            n = min(self.CHUNK, dlen - at)
            if not self._call(madvise, doff + at, n):
                return
            if at == 0 and not self._call(madvise, ooff, olen):
                return
            item[1] = at + n
            with self._cv:
                if item[1] < dlen:
                    self._active.append(item)             # round robin over the open blocks
                else:
                    self._state[b] = _DONE
                    self._needed.discard(b)

    def _call(self, madvise, off: int, length: int) -> bool:
        if madvise(self._address + off, length, MADV_POPULATE_WRITE) != 0:
            err = ctypes.get_errno()
            log.debug("VOLT: MADV_POPULATE_WRITE failed (errno %d); pages fault in as written", err)
            self.supported = False            # an old kernel (< 5.14): plain faults still work
            return False
        self.calls += 1
        return True

    def _populate(self, madvise, b: int) -> bool:
        for off, length in self._extents(b):
            if not self._call(madvise, off, length):
                return False
        self._state[b] = _DONE
        self._needed.discard(b)
        return True

    # ------------------------------------------------------------------ stop
    def settle(self) -> None:
        """Stop the worker and leave nothing to run behind the caller's back (a flush is
        about to write the mapping back): blocks already programmed are populated now --
        the media's size on disk then says which blocks were written, whatever the worker
        had time for -- and blocks erased ahead are left to fault in. A later request
        starts the worker again."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
        with self._cv:
            self._thread = None
            self._stop = False
            self._state[self._state == _QUEUED] = _UNTOUCHED
            self._ahead.clear()
            self._active.clear()
        if self.supported:
            madvise = _madvise()
            for b in sorted(self._needed):
                if self._state[b] != _DONE and not self._populate(madvise, b):
                    break
        self._needed.clear()

    def close(self) -> None:
        """settle(), for good."""
        self.settle()
        self.supported = False
