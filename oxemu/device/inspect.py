"""`MediaImage`: what a disk file holds, seen from the device side without powering a
device -- for a researcher's look, or a post-mortem after a failed torture round.

VOLT's view (volt/inspect.py: header, media label, every block's state, write pointers,
erase counts, bad block table) for any media; for AppNVM media also the FTL's own
structures (appnvm/inspect.py: unit headers, checkpoints, trim journal, the map it would
rebuild). What a host target keeps on open-channel media (pblk's lines) is the host's to
read, over the bus of a read-only Machine.

The file is opened read-only under a shared lock for as long as the image is open: other
read-only openers (`ox dev info`, a read-only Machine) may share it, a process serving
the disk (which holds it exclusively) makes the open fail with StoreError, and nothing is
ever written or created.
"""
import os

from ..volt import Faults, NandTiming, StoreError, Store, TimingMode, TimingModel, Volt, probe_geometry
from ..wire import MediaMode
from ..volt.inspect import BLOCK_STATES, block_table, header_info, label_info
from .appnvm.inspect import inspect_appnvm

__all__ = ["BLOCK_STATES", "MediaImage"]


class MediaImage:
    """A disk file opened read-only for inspection; a context manager.

    StoreError (one line) when the file is missing, empty, not an OX disk file, of
    another format version, corrupt, or held by a process serving it."""

    def __init__(self, path: str):
        self.path = path
        geo = probe_geometry(path)
        if geo is None:
            if not os.path.exists(path):
                raise StoreError(f"{path}: no such disk file")
            raise StoreError(f"{path}: empty file, not an OX disk file; refusing to use it")
        self.geometry = geo
        self._store = Store(geo, path, readonly=True)
        self.label = self._store.label

    def inspect(self) -> dict:
        """The device-side view as one JSON-able dict: format, geometry, file size and
        space in use, stop state, `label`, `blocks` (one entry per block in (ch, lun, blk)
        order; for AppNVM media each also carries the FTL's view of it) and `appnvm`
        (checkpoints, trim journal, metadata blocks, the rebuilt FTL state; None for
        other media)."""
        store = self._store
        if store is None:
            raise StoreError(f"{self.path}: the image is closed")
        doc = {"disk": os.path.abspath(self.path), **header_info(store),
               "label": label_info(self.label, os.path.basename(self.path)),
               "blocks": block_table(store), "appnvm": None}
        if self.label.mode == MediaMode.APPNVM:
            g = self.geometry
            volt = Volt(g, store, TimingModel(g.nchannels, g.nluns, TimingMode.OFF, NandTiming()), Faults())
            app = inspect_appnvm(volt, int(self.label.capacity_bytes))
            for blk, extra in zip(doc["blocks"], app.pop("blocks")):
                blk.update(extra)
            doc["appnvm"] = app
        return doc

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def __enter__(self) -> "MediaImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
