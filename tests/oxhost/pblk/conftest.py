"""Fixtures for the pblk tests: a Pblk over the real bus (Machine -> lightnvm Device -> Pblk),
volatile or on a disk file that survives an unclean stop."""
import numpy as np
import pytest

from oxemu import Geometry
from oxhost.lightnvm import Device
from oxhost.pblk import Pblk

SECTOR = 4096


def small_geometry(**kw) -> Geometry:
    """2 ch x 2 LUN x 16 blk x 16 pg x 2 pl x 4 sec: 16 lines of 512 sectors, 25.5 MiB exported."""
    base = {"nchannels": 2, "nluns": 2, "nblocks": 16, "npages": 16}
    base.update(kw)
    return Geometry(**base)


def stamp(lba: int, n: int = 1, tag: int = 0) -> np.ndarray:
    """n sectors whose every 8-byte word names (lba + i, tag): any misplaced sector shows."""
    words = np.empty((n, SECTOR // 8), dtype=np.uint64)
    words[:] = ((np.arange(lba, lba + n, dtype=np.uint64) << np.uint64(20)) | np.uint64(tag))[:, None]
    return words.view(np.uint8).reshape(-1)


@pytest.fixture
def make_pblk(make_machine):
    """make_pblk(geometry=small, lun_begin=0, lun_end=None, durable_discard=True, **Machine kw)
    -> Pblk on a new machine.

    The Pblk keeps `.machine` for tests that stop the machine under it."""

    def make(geometry=None, lun_begin=0, lun_end=None, durable_discard=True, **machine_kw):
        machine_kw.setdefault("ram_mib", 64)
        m = make_machine(geometry=geometry or small_geometry(), **machine_kw)
        p = Pblk(Device.open(m), lun_begin, lun_end, durable_discard=durable_discard)
        p.machine = m
        return p

    return make


@pytest.fixture
def pblk(make_pblk):
    return make_pblk()


@pytest.fixture
def disk_pblk(make_pblk, make_machine, tmp_path):
    """disk_pblk(**kw) -> Pblk over a volt=0 disk file in tmp_path; calling it again after
    the machine is closed reopens the same file (recovery runs in the constructor).
    disk_pblk.device() opens a bare Device on that file instead, to touch the media."""
    path = str(tmp_path / "ox.disk")

    def make(**kw):
        return make_pblk(volt=0, disk=path, **kw)

    def device():
        return Device.open(make_machine(geometry=small_geometry(), volt=0, disk=path, ram_mib=64))

    make.device = device
    return make


def unclean_stop(p) -> None:
    """kill -9 as far as pblk is concerned: no close, no flush; the machine powers off
    (the media file keeps what was programmed)."""
    p.machine.close()
