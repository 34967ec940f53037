"""2.0 devices over the real bus: a small volatile one unless a test asks otherwise."""
import numpy as np
import pytest

from oxemu import Geometry
from oxhost.lightnvm2 import ChunkAddr, Device20

SECTOR, SOS = 4096, 16


@pytest.fixture
def open20(make_machine):
    """open20(**Machine kwargs) -> Device20 on a 2.0 machine (small volatile geometry)."""
    def open_(**kw):
        kw.setdefault("spec", "2.0")
        return Device20.open(make_machine(**kw))
    return open_


@pytest.fixture
def dev20(open20):
    return open20()


def chunk_lbas(dev, g, p, c, first, count):
    """LBAs of sectors first..first+count-1 of chunk (g, p, c)."""
    return dev.chunk_lbas(g, p, c, np.arange(first, first + count))


def pattern(lbas, seed=0) -> np.ndarray:
    """Sector data that names its LBA and a seed (any two sectors differ)."""
    n = len(lbas)
    out = np.zeros((n, SECTOR), dtype=np.uint8)
    out[:, :8] = np.asarray(lbas, dtype="<u8").view(np.uint8).reshape(n, 8)
    out[:, 8:16] = np.full(n, seed, dtype="<u8").view(np.uint8).reshape(n, 8)
    out[:, 16:] = (np.arange(SECTOR - 16) + seed) % 251
    return out.reshape(-1)


def oob(lbas, seed=0) -> np.ndarray:
    n = len(lbas)
    return (np.asarray(lbas, dtype="<u8") ^ np.uint64(seed)).repeat(2).view(np.uint8)[:n * SOS]


def fill(dev, g, p, c, count, seed=0, start=0):
    """Write `count` sectors of chunk (g, p, c) from `start` (its write pointer)."""
    lbas = chunk_lbas(dev, g, p, c, start, count)
    dev.write(lbas, pattern(lbas, seed), meta=oob(lbas, seed))
    return lbas


__all__ = ["ChunkAddr", "Geometry", "SECTOR", "SOS", "chunk_lbas", "fill", "oob", "pattern"]
