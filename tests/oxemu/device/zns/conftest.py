"""ZNS device tests: a machine in zoned mode driven through the real bus -- the host's
ZonedDevice for the ordinary calls, raw commands on the driver for malformed ones -- and
sectors stamped with where they belong and which write put them there."""
import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine, ZnsParams
from oxemu.wire import Status
from oxhost.driver import DriverError
from oxhost.zns import ZoneCommandError, ZonedDevice

SECTOR, SOS = 4096, 16
GEO = Geometry.small(nblocks=4, npages=4)   # 2ch x 2lun: 8 zones of 2 LUNs x 4 pages x 8 sectors = 64 LBAs
DNR = int(Status.DNR)


def stamp(lbas, version) -> np.ndarray:
    """One sector per LBA: [lba u64, version u64, filler that depends on both]."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
    vers = np.broadcast_to(np.asarray(version, dtype=np.int64), lbas.shape)
    out = ((lbas[:, None] * 7 + vers[:, None] * 13 + np.arange(SECTOR)) & 0xFF).astype(np.uint8)
    out[:, :8] = lbas.view(np.uint8).reshape(-1, 8)
    out[:, 8:16] = np.ascontiguousarray(vers).view(np.uint8).reshape(-1, 8)
    return out.reshape(-1)


def meta_of(lbas, version) -> np.ndarray:
    """16 bytes of metadata per LBA: the LBA and the version again."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
    vers = np.broadcast_to(np.asarray(version, dtype=np.int64), lbas.shape)
    return np.stack([lbas, vers], axis=1).astype("<i8").view(np.uint8).reshape(-1)


def versions(data: np.ndarray, lbas) -> np.ndarray:
    """The version stamped in each sector; 0 for an all-zero sector, -1 for anything else."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
    d = data.reshape(-1, SECTOR)
    lb = d[:, :8].copy().view(np.int64).ravel()
    ver = d[:, 8:16].copy().view(np.int64).ravel()
    zero = ~d.any(axis=1)
    ok = (lb == lbas) & (d == stamp(lbas, ver).reshape(-1, SECTOR)).all(axis=1)
    return np.where(zero, 0, np.where(ok, ver, -1))


def status_of(fn, *a, **kw) -> int:
    """The NVMe status a library call ended with (0: it succeeded), DNR stripped."""
    try:
        fn(*a, **kw)
    except ZoneCommandError as e:
        return e.status & ~DNR
    return 0


class Zoned:
    """A zoned machine and its host library, reopened on the same disk file at will."""

    def __init__(self, tmp_path, geometry=GEO, params=None, volatile=False):
        self.disk = None if volatile else str(tmp_path / "zns.disk")
        self.geometry = geometry
        self.params = params or ZnsParams()
        self.faults = Faults()
        self.m = self.dev = None
        self.start()

    def start(self, faults: Faults | None = None, **kw) -> ZonedDevice:
        self.faults = faults or Faults()
        self.m = Machine(lnvm=0, spec="zns", volt=0 if self.disk else 1, disk=self.disk, geometry=self.geometry,
                         zns=self.params, faults=self.faults, **kw)
        self.dev = ZonedDevice.open(self.m)
        return self.dev

    @property
    def mode(self):
        return self.m.device.mode

    def stop(self, clean: bool = True) -> None:
        """Power off: a controller shutdown first (clean), or the plug pulled."""
        if self.dev is not None and clean:
            self.dev.close()
        self.m.close()
        self.m = self.dev = None

    def restart(self, clean: bool = True, **kw) -> ZonedDevice:
        self.stop(clean)
        return self.start(**kw)

    def cut_after(self, nops: int) -> None:
        """The plug goes after nops more media operations: the next one is torn."""
        self.faults.power_cut_after = self.m.stats()["media_ops"] + nops

    def raw(self, opcode, *, slba=0, nlb=1, cdw12=None, cdw13=0, nbytes=None, data=None, meta=False):
        """One raw I/O command: (status without DNR, result)."""
        drv = self.dev.driver
        nbytes = nlb * SECTOR if nbytes is None else nbytes
        buf = drv.pool.alloc(max(nbytes, 4096))
        mbuf = drv.pool.alloc(4096) if meta else None
        try:
            if data is not None:
                buf.array[:data.nbytes] = data
            p1, p2 = drv.prps(1, 0, buf.addr, nbytes)
            c12 = (nlb - 1) & 0xFFFF if cdw12 is None else cdw12
            c = drv.submit(1, [(opcode, 0, 1, mbuf.addr if mbuf else 0, p1, p2, slba & 0xFFFF_FFFF, slba >> 32,
                                c12, cdw13, 0, 0)])[0]
            return c.status & ~DNR, c.result
        finally:
            buf.free()
            if mbuf is not None:
                mbuf.free()

    def close(self) -> None:
        if self.m is not None:
            try:
                self.stop(clean=self.m.stats()["media_powered"])
            except DriverError:
                self.m.close()


@pytest.fixture
def zoned(tmp_path):
    """zoned(**Zoned kwargs) -> Zoned, on a disk file in tmp_path; closed at teardown."""
    made = []

    def make(**kw):
        z = Zoned(tmp_path, **kw)
        made.append(z)
        return z

    yield make
    for z in reversed(made):
        z.close()


@pytest.fixture
def zd(zoned):
    """The default small zoned device (8 zones of 64 LBAs, 48 writable)."""
    return zoned()

